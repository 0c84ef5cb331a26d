"""Prompts and offline metrics for the open-ended tasks of P-BETA Tables 11-12.

Same fields and prompts as the HPAI-BSC tasks upstreamed to lm-eval (careqa_open, meddialog, mediqa_qa2019,
medtext, mts_dialog, olaph, meqsum, mimic_repsum), but the upstream utils load their metrics from the hub
at import (`evaluate.load`), need bleurt (not on PyPI) and use `np.NAN` (gone in NumPy 2). Here ROUGE comes
from `rouge_score` and BLEU from `sacrebleu`, both local; BLEURT and BERTScore are left out (they download
models). A failed metric is float("nan") and aggregates with nanmean.
"""

import re

from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU

_ROUGE = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
_BLEU = BLEU(effective_order=True)


def generation_metrics(prediction: str, reference: str) -> dict:
    """ROUGE-1/2/L F1 and sentence BLEU (0-1), NaN where a metric cannot be computed."""
    out = {}
    try:
        scores = _ROUGE.score(reference, prediction)
        out.update({k: scores[k].fmeasure for k in ("rouge1", "rouge2", "rougeL")})
    except Exception:
        out.update({k: float("nan") for k in ("rouge1", "rouge2", "rougeL")})
    try:
        out["bleu"] = _BLEU.sentence_score(prediction, [reference]).score / 100
    except Exception:
        out["bleu"] = float("nan")
    return out


def perplexity_metrics(loglikelihood: float, reference: str) -> dict:
    words = len(re.split(r"\s+", reference.strip())) or 1
    nbytes = len(reference.encode("utf-8")) or 1
    return {
        "word_perplexity": (loglikelihood, words),
        "byte_perplexity": (loglikelihood, nbytes),
        "bits_per_byte": (loglikelihood, nbytes),
    }


def _mimic_sections(text):
    """(findings, impressions) of a radiology report, as the upstream mimic_repsum task splits it."""
    a = re.search("IMPRESSION", text, re.IGNORECASE)
    b = re.search("FINDING", text, re.IGNORECASE)
    a, b = (a.start() if a else -1), (b.start() if b else -1)
    if a < b:
        impressions, findings = text[a:b].split("     ")[0], text[b:].split("     ")[0]
    else:
        impressions, findings = text[a:].split("     ")[0], text[b:a].split("     ")[0]
    if len(findings) < 5 < len(impressions):
        findings = text[:a]
    return findings, impressions


def _meqsum_question(text):
    i = text.find("MESSAGE")
    return text[i + 9 :] if i != -1 else text


# task -> (prompt from a document, reference from a document)
FIELDS = {
    "careqa_open": (lambda d: d["question"], lambda d: d["answer"]),
    "meddialog_qsumm": (lambda d: d["src"], lambda d: d["tgt"]),
    "mediqa_qa2019": (
        lambda d: d["QUESTION"]["QuestionText"],
        lambda d: d["QUESTION"]["AnswerList"][0]["Answer"]["AnswerText"],
    ),
    "medtext": (lambda d: d["Prompt"], lambda d: d["Completion"]),
    "mts_dialog": (lambda d: d["dialogue"], lambda d: d["section_text"]),
    "olaph": (lambda d: d["Question"], lambda d: d["Free_form_answer"]),
    "meqsum": (lambda d: _meqsum_question(d["CHQ"]), lambda d: d["Summary"]),
    "mimic_repsum": (
        lambda d: f"Given the findings: {_mimic_sections(d['extractive_notes_summ'])[0]}.\nSummarize the findings.",
        lambda d: _mimic_sections(d["extractive_notes_summ"])[1],
    ),
}


def _bind(task):
    text, target = FIELDS[task]
    g = globals()
    g[f"{task}_text"] = text
    g[f"{task}_target"] = target
    g[f"{task}_results"] = lambda doc, results: generation_metrics(results[0], target(doc))
    g[f"{task}_perplexity"] = lambda doc, results: perplexity_metrics(results[0], target(doc))


for _task in FIELDS:
    _bind(_task)


def olaph_docs(dataset):
    """The upstream olaph task scores the first 10% of the test split (its comment says 1%)."""
    return dataset.select(range(max(1, int(0.1 * len(dataset)))))


# Medical text classification (Table 11 "Med. Text Classif."): upstream reads a CSV on the authors'
# cluster; the public source is TimSchopf/medical_abstracts (recipe choice, see lm-eval PR #4103).
MTC_CHOICES = [
    "neoplasms",
    "digestive system diseases",
    "nervous system diseases",
    "cardiovascular diseases",
    "general pathological conditions",
]


def mtc_docs(dataset):
    """Accept the public dataset's columns (medical_abstract, condition_label) or the upstream CSV's (text, class)."""

    def norm(d):
        return {
            "text": d.get("text") or d.get("medical_abstract"),
            "label": int(d.get("class") or d["condition_label"]) - 1,
        }

    return dataset.map(norm)


def mtc_text(doc):
    options = "\n".join(f"{chr(65 + i)}. {c}" for i, c in enumerate(MTC_CHOICES))
    return (
        f"Classify the topic of the following medical text into one of the following choices.\n"
        f"Text: {doc['text']}\nChoices:\n{options}\nAnswer:"
    )
