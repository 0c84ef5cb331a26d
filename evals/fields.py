"""Accuracy per medical field (P-BETA Table 10): every MCQA question labelled with one medical field by an LLM, and
lm-eval's per-sample accuracy averaged per field.

The authors' labeller (HPAI-BSC/medical-fields, configs/main.yaml and the configs it names): Llama-3-70B-Instruct
reads the question alone, after a system prompt naming the fields of `medical_fields_35_v2.txt` and seven few-shot
turns (configs/prompt/prompt-cot.yaml; here the same structure in our own words), samples at temperature 0.7, top_k 50, top_p 0.9 with 500 tokens, and its
label is the word after the last "The category is: " when that word is on the list. Their code labels a reply
without one "None", the list's own "does not fit" entry; here such a reply is unlabelled, counted and reported
apart, never a field. Their output `medical_fields.json` is a list of {dataset, question, medical_field,
cot_medical_field, ...}; a file in that layout gives the labels offline (cot_medical_field, the reply, is parsed
again where present, so their "None" of an unparsed reply is told apart from a "None" answer).
"""

import hashlib
import json
import math
import re

from data_prep.benchmarks import MMLU_MEDICAL
from scripts.core import AloeError

LABELLER = "meta-llama/Meta-Llama-3-70B-Instruct"  # configs/model/Llama-3-70B-Instruct.yaml
TEMPERATURE, TOP_P, MAX_TOKENS = 0.7, 0.9, 500  # the same file's sampling_params
# [C] top_k 50 is not sent: the generation backends (medprompt/generate.py) take temperature and top_p only
SEED = 0
NONE = "None"  # on the list: the labeller's answer for a question of no (or no clear) field
FIELDS = (
    "None Cardiology Hematology Oncology Endocrinology Respiratory Allergy Dermatology Nephrology Gastroenterology "
    "Rheumatology Otorhinolaryngology Anesthesiology Biochemistry Pharmacology Psychiatry Microbiology Physiology "
    "Pathology Obstetrics Gynecology Surgery Emergency Orthopedics Neurology Urology Anatomy Genetics Radiology "
    "Ophthalmology Odontology Pediatrics Geriatrics Nursing Chemistry Psychology"
).split()  # configs/medical_fields/medical_fields_35_v2.txt, in its order (main.yaml's default list)
# lm-eval task -> (the authors' dataset name, the doc field holding the question). [C] the datasets their labelling
# config lists (configs/datasets/medical_tasks_test.yaml; HEAD-QA is not in this suite): the paper does not say
# which went into Table 10, so aloe_pubmedqa and mmlu_college_biology, which they did not label, are left out.
TASKS = {
    "careqa_en": ("CareQA", "question"),
    "medmcqa": ("medmcqa", "question"),
    "medqa_4options": ("medqa_4options", "sent1"),
    **{t: (t, "question") for t in MMLU_MEDICAL if t != "mmlu_college_biology"},
}
# [C] The authors' prompt structure (configs/prompt/prompt-cot.yaml: a system prompt with the list joined by
# commas, seven few-shot turns, the reply ending "The category is: <field>"), in this repository's own words and
# examples: their text is not reproduced here, so labels from this prompt may differ from theirs a little.
SYSTEM = (
    "Classify the medical question you are given into exactly one of these fields: "
    f"{','.join(FIELDS)}. Reason briefly, step by step, about what the question is mainly about, then give the "
    "field as one word from the list. When the question fits no field, or several equally, the field is None. "
    "Finish with the line 'The category is: <field>'."
)
SHOTS = [
    ("Which valve is most often affected in rheumatic heart disease?",
     "Rheumatic heart disease damages the heart valves, so this is a question about the heart. "
     "The category is: Cardiology"),
    ("What is the usual starting dose of levothyroxine for an adult with hypothyroidism?",
     "Hypothyroidism is a disorder of the thyroid gland, a hormone-producing organ. The category is: Endocrinology"),
    ("Which stain shows acid-fast bacilli in a sputum smear?",
     "The question is about identifying bacteria in a laboratory sample. The category is: Microbiology"),
    ("What is the first test to order in a child with suspected iron-deficiency anaemia?",
     "The question is about a disorder of the blood and how it is diagnosed. The category is: Hematology"),
    ("Which nerve is at risk in a fracture of the surgical neck of the humerus?",
     "The axillary nerve wraps around the surgical neck of the humerus; this is nerve and bone anatomy. "
     "The category is: Anatomy"),
    ("Who wrote the novel Don Quixote?",
     "This is a question about literature, not medicine. The category is: None"),
    ("Wht dose for kid",
     "The question is too incomplete to tell what it asks. The category is: None"),
]  # fmt: skip
CATEGORY = re.compile(r"The category is: (\w+)")  # prompt-cot.yaml's regex (case as written)
# lm-eval's careqa/utils.py (PR #2714, v0.4.12 on) asks this question for a CareQA_en row whose question is None,
# while the sample it logs keeps the None: that row is labelled by this question and counted (no_question)
CAREQA_NONE_QUESTION = (
    "In relation to the immune mechanism involved in the rejection of transplanted solid organs, indicate the "
    "incorrect answer:"
)


class FieldsError(AloeError, ValueError):
    pass


def messages(question: str) -> list:
    shots = [{"role": role, "content": t} for q, a in SHOTS for role, t in (("user", q), ("assistant", a))]
    return [{"role": "system", "content": SYSTEM}, *shots, {"role": "user", "content": question}]


def parse(text: str) -> str | None:
    """The field of the last "The category is: X" when X is on the list (NONE included); None when unlabelled."""
    found = CATEGORY.findall(text or "")
    return found[-1] if found and found[-1] in FIELDS else None


def key(dataset: str, question: str) -> str:
    """One id per question of a dataset; whitespace does not count. Their names may end in _test/_validation."""
    dataset = re.sub(r"_(test|validation)$", "", dataset)
    return hashlib.sha256(f"{dataset}\n{' '.join(question.split())}".encode()).hexdigest()[:16]


def question(task: str, doc: dict) -> tuple:
    """(key, question text, no_question) of an lm-eval sample's doc. A doc whose question is None or missing: on
    CareQA_en lm-eval's stand-in question, on any other task no key (unlabelled)."""
    dataset, field = TASKS[task]
    q = doc.get(field)
    if q is None and task == "careqa_en":
        return key(dataset, CAREQA_NONE_QUESTION), CAREQA_NONE_QUESTION, True
    return (None, None, True) if q is None else (key(dataset, q), q, False)


def load_labels(path) -> dict:
    """{key: field or None} from a medical_fields.json (a JSON list, or JSON lines) of the authors' layout."""
    text = open(path, encoding="utf-8").read()
    rows = json.loads(text) if text.lstrip().startswith("[") else [json.loads(x) for x in text.splitlines() if x]
    out = {}
    for n, row in enumerate(rows):
        try:
            k, cot, field = key(row["dataset"], row["question"]), row.get("cot_medical_field"), row.get("medical_field")
        except (KeyError, TypeError, AttributeError) as e:
            raise FieldsError(f"{path}: record {n} is not a medical-fields record ({type(e).__name__}: {e})") from None
        out.setdefault(k, parse(cot) if isinstance(cot, str) else field if field in FIELDS else None)
    return out


COUNTS = ("samples", "none", "unlabelled", "no_question")  # accuracy()'s counts of the whole labelling


def _share(k: int, n: int) -> tuple:
    """(acc, stderr) of k correct in n, as lm-eval's mean and its sample stderr."""
    p = k / n
    return p, math.sqrt(p * (1 - p) / max(n - 1, 1))


def accuracy(rows: list) -> dict:
    """Per field: samples, correct, acc (0-1), stderr, from [{field, acc}]; with the samples labelled NONE and those
    unlabelled (a malformed reply, or no label for the question) counted apart, and those whose logged doc had no
    question ({no_question: True})."""
    out = {"samples": len(rows), "none": sum(r["field"] == NONE for r in rows),
           "unlabelled": sum(r["field"] is None for r in rows),
           "no_question": sum(bool(r.get("no_question")) for r in rows), "fields": {}}  # fmt: skip
    for f in FIELDS[1:]:
        accs = [r["acc"] for r in rows if r["field"] == f]
        k = sum(a == 1 for a in accs)
        acc, se = _share(k, len(accs)) if accs else (None, None)
        out["fields"][f] = {"samples": len(accs), "correct": k, "acc": acc, "stderr": se}
    return out


def results_file(acc: dict, config: dict) -> dict:
    """lm-eval's shape: task field_<field> (lower case, as reported.yaml's table10 columns), acc 0-1; a field no
    question was labelled with has acc null. The counts of the whole labelling under `fields`."""
    res, n = {}, {}
    for f, v in acc["fields"].items():
        res[f"field_{f.lower()}"] = {"acc,none": v["acc"], "acc_stderr,none": v["stderr"]}
        n[f"field_{f.lower()}"] = {"original": v["samples"], "effective": v["samples"]}
    counts = {k: acc[k] for k in COUNTS}
    return {"results": res, "n-samples": n, "fields": counts, "config": config}
