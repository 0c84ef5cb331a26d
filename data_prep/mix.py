"""Step g: mix the SFT blocks to the paper's shares (medical 60%, synthetic CoT 20%, general 20%) and report
the task counts against P-BETA Table 3. The largest mix with exactly those shares is taken; within a block
the rows kept are a seeded random subset. Preference rows (dpo, redteam blocks) pass through. A row left
out to meet the shares goes to the rejects as "over the block's share".

  python -m data_prep.mix --in templated.jsonl --out mixed.jsonl --rejects r.jsonl --report r.json [--seed 0]
"""

import json
import random
from collections import Counter
from pathlib import Path

from .io import Report, Writer, read_jsonl, step_args

SHARES = {"medical": 0.60, "synthetic_cot": 0.20, "general": 0.20}  # P-BETA §4, Table 2.2 of aloe_facts
TABLE3 = {
    "synthetic_cot_mcqa": 505771,
    "question_answering": 411667,
    "text_summarization": 162069,
    "explanation": 155565,
    "diagnosis": 140524,
    "text_classification": 64793,
    "ner": 40729,
    "sentence_composition_analysis": 26373,
    "text_completion": 19718,
    "treatment_planning": 18672,
    "nli": 12465,
    "text_retrieval": 11645,
    "translation": 10418,
    "fact_verification": 9752,
    "clinical_note_taking": 9250,
    "word_relation_classification": 9036,
    "intent_identification": 5848,
    "dialogue": 3641,
    "wrong_candidate_generation": 3350,
    "information_extraction": 1118,
}


def quotas(counts: dict) -> dict:
    present = {b: s for b, s in SHARES.items() if counts.get(b)}
    if not present:
        return {}
    total = min(counts[b] / s for b, s in present.items())
    return {b: int(round(total * s)) if counts[b] >= round(total * s) else counts[b] for b, s in present.items()}


def run(inp, out, rejects, report_path, seed=0):
    counts = Counter(row["block"] for _, row, _ in read_jsonl(inp))
    quota = quotas(counts)
    keep = {}
    for b, q in quota.items():  # the rank of each row of a block in a seeded permutation
        order = list(range(counts[b]))
        random.Random(f"{seed}:{b}").shuffle(order)
        keep[b] = set(order[:q])
    rep, seen, tasks = Report("mix", rejects), Counter(), Counter()
    with Writer(out) as w:
        for _, row, _ in read_jsonl(inp):
            b = row["block"]
            rep.saw(row["source"])
            i = seen[b]
            seen[b] += 1
            dropped = b in keep and i not in keep[b]
            rep.route(w, row, "over the block's share" if dropped else None)
            if b in SHARES and not dropped:
                tasks[row["task"]] += 1
    result = rep.close(report_path)
    total = sum(quota.values()) or 1
    result["blocks"] = {
        b: {
            "available": counts.get(b, 0),
            "kept": quota.get(b, 0),
            "share": quota.get(b, 0) / total,
            "paper_share": SHARES[b],
        }
        for b in SHARES
    }
    result["tasks_vs_table3"] = {
        t: {"ours": tasks.get(t, 0), "paper": TABLE3.get(t)} for t in sorted(set(tasks) | set(TABLE3))
    }
    Path(report_path).write_text(json.dumps(result, indent=2))
    return result


def main(argv=None):
    ap = step_args(__doc__)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    print(json.dumps(run(a.inp, a.out, a.rejects, a.report, a.seed)["blocks"]))


if __name__ == "__main__":
    main()
