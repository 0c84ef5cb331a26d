"""Small evaluation fixtures in each benchmark's own schema (the fields lm-eval's prompts read).

One builder per dataset schema; `FIXTURES` maps an lm-eval task name to (builder, n rows). The tiny
model is scored on them by `make eval --local`, through the same task definitions as the real data.
"""

import random

from .benchmarks import MMLU_SUBJECTS, PUBMEDQA_TEST_IDS

DRUGS = {
    "hypertension": "lisinopril",
    "diabetes": "metformin",
    "asthma": "salbutamol",
    "pneumonia": "amoxicillin",
    "anemia": "iron",
    "migraine": "sumatriptan",
    "arthritis": "ibuprofen",
    "thrombosis": "heparin",
}


def _question(rnd):
    cond = rnd.choice(list(DRUGS))
    options = rnd.sample([d for d in DRUGS.values() if d != DRUGS[cond]], 3) + [DRUGS[cond]]
    rnd.shuffle(options)
    return f"Which drug is first-line for {cond}?", options, options.index(DRUGS[cond]), cond


def medqa(rnd, i):  # GBaker/MedQA-USMLE-4-options-hf
    q, opts, ans, _ = _question(rnd)
    return {"id": f"medqa-{i}", "sent1": q, "sent2": "", **{f"ending{j}": o for j, o in enumerate(opts)}, "label": ans}


def medmcqa(rnd, i):  # openlifescienceai/medmcqa
    q, opts, ans, _ = _question(rnd)
    return {
        "id": f"medmcqa-{i}",
        "question": q,
        "opa": opts[0],
        "opb": opts[1],
        "opc": opts[2],
        "opd": opts[3],
        "cop": ans,
        "choice_type": "single",
        "exp": "",
        "subject_name": "Pharmacology",
        "topic_name": "",
    }


def pubmedqa(rnd, i):  # qiaojin/PubMedQA pqa_labeled (aloe_pubmedqa keeps the official test ids only)
    cond = rnd.choice(list(DRUGS))
    label = rnd.choice(["yes", "no", "maybe"])
    return {
        "pubid": int(PUBMEDQA_TEST_IDS[i]),
        "question": f"Does {DRUGS[cond]} improve outcomes in {cond}?",
        "context": {
            "contexts": [f"We studied {rnd.randint(20, 400)} patients with {cond} treated with {DRUGS[cond]}."],
            "labels": ["BACKGROUND"],
            "meshes": [],
            "reasoning_required_pred": [label],
            "reasoning_free_pred": [label],
        },
        "long_answer": "",
        "final_decision": label,
    }


def mmlu(rnd, i):  # cais/mmlu
    q, opts, ans, _ = _question(rnd)
    return {"question": q, "subject": "clinical_knowledge", "choices": opts, "answer": ans}


def careqa_en(rnd, i):  # HPAI-BSC/CareQA, CareQA_en
    q, opts, ans, _ = _question(rnd)
    return {
        "exam_id": i,
        "question": q,
        **{f"op{j + 1}": o for j, o in enumerate(opts)},
        "cop": ans + 1,
        "year": 2024,
        "category": "Medicine",
        "unique_id": f"careqa-{i}",
    }


def _qa(rnd):
    cond = rnd.choice(list(DRUGS))
    return f"What is the first-line treatment for {cond}?", f"{cond} is usually treated with {DRUGS[cond]}."


def careqa_open(rnd, i):
    q, a = _qa(rnd)
    return {"exam_id": i, "question": q, "answer": a, "year": 2024, "category": "Medicine", "unique_id": f"o-{i}"}


def meddialog_qsumm(rnd, i):
    q, a = _qa(rnd)
    return {"src": f"Patient: {q} I have been unwell for a week. Doctor: {a}", "tgt": q, "id": str(i)}


def mediqa_qa2019(rnd, i):
    q, a = _qa(rnd)
    return {
        "QUESTION": {
            "QID": str(i),
            "QuestionText": q,
            "AnswerList": [
                {
                    "Answer": {
                        "AID": f"{i}_1",
                        "SystemRank": 1,
                        "ReferenceRank": 1,
                        "ReferenceScore": 4,
                        "AnswerURL": "",
                        "AnswerText": a,
                    }
                }
            ],
        }
    }


def medtext(rnd, i):
    q, a = _qa(rnd)
    return {"Prompt": q, "Completion": a}


def mts_dialog(rnd, i):
    q, a = _qa(rnd)
    return {"ID": i, "section_header": "ASSESSMENT", "section_text": a, "dialogue": f"Doctor: Hello. Patient: {q}"}


def olaph(rnd, i):
    q, a = _qa(rnd)
    return {"Question": q, "Free_form_answer": a, "Must_have": [a], "Nice_to_have": []}


def meqsum(rnd, i):
    q, a = _qa(rnd)
    return {"File": f"{i}.txt", "CHQ": f"SUBJECT: treatment MESSAGE: Hello, {q} Thanks.", "Summary": q}


def mimic_repsum(rnd, i):
    cond = rnd.choice(list(DRUGS))
    return {
        "extractive_notes_summ": f"FINDINGS: signs of {cond} in the lungs.     IMPRESSION: {cond}.     ",
        "target_text": "",
    }


def med_text_classification(rnd, i):  # TimSchopf/medical_abstracts
    label = rnd.randint(1, 5)
    return {
        "medical_abstract": f"An abstract about condition group {label} and its {rnd.choice(list(DRUGS))}.",
        "condition_label": label,
    }


FIXTURES = {
    "medqa_4options": (medqa, 40),
    "medmcqa": (medmcqa, 12),
    "pubmedqa": (pubmedqa, 12),
    "careqa_en": (careqa_en, 12),
    **{f"mmlu_{s}": (mmlu, 6) for s in MMLU_SUBJECTS},
    **{
        f"aloe_{t}": (f, 4)
        for t, f in [
            ("careqa_open", careqa_open),
            ("meddialog_qsumm", meddialog_qsumm),
            ("mediqa_qa2019", mediqa_qa2019),
            ("medtext", medtext),
            ("mts_dialog", mts_dialog),
            ("olaph", olaph),
            ("meqsum", meqsum),
            ("mimic_repsum", mimic_repsum),
            ("med_text_classification", med_text_classification),
        ]
    },
}


def cot_database(n: int = 60, seed: int = 0):
    """A small Medprompt database in medprompt/database.py's schema: training-style questions with a
    step-by-step answer ending at the correct option (as the CoT generator's kept answers do)."""
    rnd = random.Random(f"{seed}-cot-db")
    out = []
    for i in range(n):
        q, opts, ans, cond = _question(rnd)
        reasoning = f"The question asks for the first-line drug for {cond}. " + " ".join(
            f"{o} {'treats' if j == ans else 'does not treat'} {cond}." for j, o in enumerate(opts)
        )
        out.append({"id": f"db-{i}", "question": q, "options": opts, "answer": ans, "reasoning": reasoning})
    return out


def rows(task: str, seed: int = 0):
    """The fixture rows for an lm-eval task name (its _perplexity twin shares the generation task's data)."""
    base = task.removesuffix("_perplexity")
    builder, n = FIXTURES[base]
    rnd = random.Random(f"{seed}-{base}")
    return [builder(rnd, i) for i in range(n)]
