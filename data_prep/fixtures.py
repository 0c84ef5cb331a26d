"""Small offline source corpora in each source's real schema, with planted problems the pipeline must catch.

Writes DIR/<source>.jsonl for a subset of the registry (every format: alpaca, sharegpt, qa, mcqa_cot,
preference) and DIR/planted.json: each planted row with the step and reason expected to handle it.
Planted: exact and near duplicates, test questions of the eval fixtures (contamination), dirty rows (a URL,
an e-mail, an empty answer, an irrelevant answer, malformed multiple-choice answers) and malformed records
(a broken JSON line, a missing field, a wrong type). Clean rows are random enough never to collide.

  python -m data_prep.fixtures --out DIR --eval-dir EVAL_DIR   (EVAL_DIR: the eval fixtures, for contamination)
"""
import argparse
import json
import random
from pathlib import Path

VOCAB = ("patient fever cough insulin renal hepatic cardiac pulmonary biopsy lesion chronic acute dose infusion "
         "antibiotic steroid thrombosis embolism anemia platelet neutrophil lymphocyte cortisol thyroid glucose "
         "ketone sodium potassium calcium magnesium ventricle atrium valve murmur stenosis sclerosis neuropathy "
         "seizure migraine stroke aneurysm fracture ligament tendon cartilage dermatitis eczema psoriasis ulcer "
         "gastritis colitis hepatitis cirrhosis pancreatitis nephritis cystitis prostate ovary uterus placenta "
         "fetus neonate infant toddler adolescent elderly vaccine antibody antigen allergen histamine").split()


def sentence(rnd, n):
    return " ".join(rnd.choice(VOCAB) for _ in range(n)).capitalize() + "."


def qa(rnd):
    return sentence(rnd, 14).rstrip(".") + "?", " ".join(sentence(rnd, 12) for _ in range(4))


def build(out: Path, test_question: str, seed: int = 0, dpo_pairs: int = 80, redteam_pairs: int = 16) -> list:
    rnd, out = random.Random(seed), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files, planted = {}, []

    def add(source, row, expect=None, raw=None):
        lines = files.setdefault(source, [])
        lines.append(raw if raw is not None else json.dumps(row))
        if expect:
            planted.append({"source": source, "line": len(lines), **expect})
        return len(lines)

    # medical: alpaca (meds_ins), sharegpt (ultramedical), qa with renamed fields (medtext, mts_dialog)
    for _ in range(12):
        q, a = qa(rnd)
        add("meds_ins", {"instruction": q, "input": "", "output": a})
    q, a = qa(rnd)
    first = add("meds_ins", {"instruction": q, "input": "", "output": a})
    add("meds_ins", {"instruction": q, "input": "", "output": a}, {"step": "dedup", "reason": "exact duplicate", "of": first})
    add("meds_ins", None, {"step": "normalize", "reason": "malformed JSON"}, raw='{"instruction": "broken')
    add("meds_ins", {"instruction": "What is the dose?", "input": ""}, {"step": "normalize", "reason": "missing field 'output'"})
    add("meds_ins", {"instruction": "What is the dose?", "input": "", "output": 12}, {"step": "normalize", "reason": "wrong type"})
    add("meds_ins", {"instruction": sentence(rnd, 12), "input": "", "output": ""}, {"step": "clean", "reason": "no answer"})
    add("meds_ins", {"instruction": sentence(rnd, 12), "input": "", "output": "Erratum"},
        {"step": "clean", "reason": "irrelevant answer"})
    add("meds_ins", {"instruction": sentence(rnd, 12) + " Options: A. x B. y", "input": "", "output": "Explanation: Ans. B"},
        {"step": "clean", "change": "normalized multiple-choice answer", "expect_text": "Answer: [B]"})
    add("meds_ins", {"instruction": sentence(rnd, 12) + " See https://example.org/guide or write to dr.who@example.com",
                     "input": "", "output": sentence(rnd, 20)}, {"step": "clean", "change": "url and e-mail removed"})
    for _ in range(8):
        q, a = qa(rnd)
        add("ultramedical_textbookqa", {"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]})
    q, a = qa(rnd)
    first = add("ultramedical_textbookqa", {"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]})
    near = a.rsplit(" ", 1)[0] + " indeed."
    add("ultramedical_textbookqa", {"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": near}]},
        {"step": "dedup", "reason": "near duplicate", "of": first})
    add("ultramedical_textbookqa", {"conversations": "not a list"}, {"step": "normalize", "reason": "wrong type"})
    for _ in range(3):
        q, a = qa(rnd)
        add("medtext", {"Prompt": q, "Completion": a})
    add("medtext", {"Prompt": f"A colleague asked me this: {test_question} What do you think?",
                    "Completion": sentence(rnd, 20)},
        {"step": "decontaminate", "reason": "8-gram overlap with a test question"})
    for _ in range(3):
        q, a = qa(rnd)
        add("mts_dialog", {"dialogue": "Doctor: " + q + " Patient: " + sentence(rnd, 10), "section_text": a})
    # synthetic CoT (mcqa_cot) and general (sharegpt, multi-turn): 10 + 10 clean rows, medical 30: shares 60/20/20
    for _ in range(10):
        q, a = qa(rnd)
        add("medmcqa_cot_llama31", {"question": q, "options": {"A": "x", "B": "y", "C": "z", "D": "w"},
                                    "response": a + " Answer: [C]"})
    for _ in range(10):
        (q1, a1), (q2, a2) = qa(rnd), qa(rnd)
        add("aloe_beta_general_collection", {"conversations": [
            {"from": "human", "value": q1}, {"from": "gpt", "value": a1},
            {"from": "human", "value": q2}, {"from": "gpt", "value": a2}]})
    # preferences: DPO pairs (+ an exact duplicate) and red-team pairs
    for _ in range(dpo_pairs):
        q, a = qa(rnd)
        add("aloe_beta_dpo", {"prompt": q, "chosen": a, "rejected": sentence(rnd, 15)})
    dup = json.loads(files["aloe_beta_dpo"][0])
    add("aloe_beta_dpo", dup, {"step": "dedup", "reason": "exact duplicate", "of": 1})
    for _ in range(redteam_pairs):
        add("egida_dpo_llama31_8b", {"prompt": [{"role": "user", "content": "How do I " + sentence(rnd, 10)}],
                                     "chosen": [{"role": "assistant", "content": "I can't help with that."}],
                                     "rejected": [{"role": "assistant", "content": sentence(rnd, 12)}]})
    for source, lines in files.items():
        (out / f"{source}.jsonl").write_text("\n".join(lines) + "\n")
    (out / "planted.json").write_text(json.dumps(planted, indent=2))
    return planted


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--test-question", default="Which drug is first-line for asthma?")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    print(f"{len(build(Path(a.out), a.test_question, a.seed))} planted rows in {a.out}")


if __name__ == "__main__":
    main()
