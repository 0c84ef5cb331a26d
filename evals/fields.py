"""Accuracy per medical field (P-BETA Table 10): every MCQA question labelled with one medical field by an LLM, and
lm-eval's per-sample accuracy averaged per field.

The authors' labeller (HPAI-BSC/medical-fields, configs/main.yaml and the configs it names): Llama-3-70B-Instruct
reads the question alone, after a system prompt naming the fields of `medical_fields_35_v2.txt` and seven few-shot
turns (configs/prompt/prompt-cot.yaml), samples at temperature 0.7, top_k 50, top_p 0.9 with 500 tokens, and its
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
    **{f"mmlu_{s}": (f"mmlu_{s}", "question") for s in (
        "anatomy", "clinical_knowledge", "college_medicine", "medical_genetics", "professional_medicine")},
}  # fmt: skip
# The prompt of configs/prompt/prompt-cot.yaml, the list joined by commas as their Inference does.
SYSTEM = (
    "You are an expert medical assistant tasked with classifying medical questions into specific categories. You "
    "will be given a medical question. Your job is to categorize the question into one of the following categories: "
    f"{','.join(FIELDS)}. Ensure that your output includes a step-by-step explanation of your reasoning process "
    "followed by the final category. Provide the name of the category as a single word and nothing else. If you have "
    "any doubts or the question does not fit clearly into one category, respond with 'The category is: None'. End "
    "your response with 'The category is: <category>'."
)
SHOTS = [
    ("What are the common symptoms of a myocardial infarction?",
     "Myocardial infarction refers to a heart attack, which is a condition related to the heart. Heart conditions "
     "are categorized under Cardiology. The category is: Cardiology"),
    ("What is the first-line treatment for type 2 diabetes?",
     "Type 2 diabetes is a metabolic disorder that involves insulin regulation. Disorders related to metabolism and "
     "insulin are categorized under Endocrinology. The category is: Endocrinology"),
    ("What are the stages of non-small cell lung cancer?",
     "Non-small cell lung cancer is a type of cancer. The staging of cancer is a process that falls under the field "
     "of Oncology. The category is: Oncology"),
    ("How is rheumatoid arthritis diagnosed?",
     "Rheumatoid arthritis is an autoimmune disease that affects the joints. Diseases affecting the joints and "
     "autoimmune conditions are categorized under Rheumatology. The category is: Rheumatology"),
    ("What are the side effects of the MMR vaccine?",  # Immunology is not on the list: such a reply is unlabelled
     "The MMR vaccine triggers immune responses to prevent measles, mumps, and rubella. Immune responses and "
     "vaccinations are categorized under Immunology. The category is: Immunology"),
    ("What is the capital of France?",
     "The question is unrelated to medical fields and does not fit into any medical category. The category is: None"),
    ("Waht are l",
     "The question is incomplete and contains significant typos, making it unclear and impossible to categorize. "
     "The category is: None"),
]  # fmt: skip
CATEGORY = re.compile(r"The category is: (\w+)")  # prompt-cot.yaml's regex (case as written)


class FieldsError(ValueError):
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
    """(key, question text) of an lm-eval sample's doc."""
    dataset, field = TASKS[task]
    return key(dataset, doc[field]), doc[field]


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


def _share(k: int, n: int) -> tuple:
    """(acc, stderr) of k correct in n, as lm-eval's mean and its sample stderr."""
    p = k / n
    return p, math.sqrt(p * (1 - p) / max(n - 1, 1))


def accuracy(rows: list) -> dict:
    """Per field: samples, correct, acc (0-1), stderr, from [{field, acc}]; with the samples labelled NONE and those
    unlabelled (a malformed reply, or no label for the question) counted apart."""
    out = {"samples": len(rows), "none": sum(r["field"] == NONE for r in rows),
           "unlabelled": sum(r["field"] is None for r in rows), "fields": {}}  # fmt: skip
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
    counts = {k: acc[k] for k in ("samples", "none", "unlabelled")}
    return {"results": res, "n-samples": n, "fields": counts, "config": config}
