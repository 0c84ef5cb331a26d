"""data_prep benchmark: the whole pipeline on a synthetic corpus (default 200k samples), each step timed
as its own process (samples/s, peak RSS), extrapolated linearly to the 2M samples of the real mix.
Goal: the 2M-sample mix in at most 30 minutes and 4 GB RSS on 2 cores.

  python -m scripts.bench.data_prep_bench [--samples 200000] [--words 200] [--keep DIR]
The corpus: 60/20/20 medical (alpaca) / synthetic CoT (mcqa_cot) / general (sharegpt, multi-turn) rows of
about --words words, with 3% exact and 3% near duplicates, plus a 40k-pair preference set.
"""

import argparse
import json
import random
import shutil
import tempfile
from pathlib import Path

from data_prep import eval_fixtures, pipeline
from scripts.core import table

WORDS = [
    f"{a}{b}"
    for a in ("card", "neur", "gast", "pulm", "ren", "hep", "derm", "onc", "hem", "endo")
    for b in (
        "itis",
        "osis",
        "emia",
        "ectomy",
        "ology",
        "algia",
        "opathy",
        "oma",
        "plasty",
        "scopy",
        "genic",
        "trophy",
        "lysis",
        "stasis",
        "uria",
        "pnea",
        "cyte",
        "blast",
        "gram",
        "tomy",
    )
]


def text(rnd, n):
    return " ".join(rnd.choices(WORDS, k=n))


def corpus(d: Path, n: int, words: int, seed=0):
    rnd = random.Random(seed)
    d.mkdir(parents=True, exist_ok=True)
    plan = {"meds_ins": int(0.6 * n), "medmcqa_cot_llama31": int(0.2 * n), "aloe_beta_general_collection": int(0.2 * n)}
    for source, count in plan.items():
        prev = None
        with open(d / f"{source}.jsonl", "w") as f:
            for _ in range(count):
                q, a = text(rnd, words // 5), text(rnd, words - words // 5)
                r = rnd.random()
                if prev and r < 0.03:
                    q, a = prev  # exact duplicate
                elif prev and r < 0.06:
                    q, a = prev[0], prev[1].rsplit(" ", 1)[0] + " x"  # near duplicate
                prev = (q, a)
                if source == "meds_ins":
                    row = {"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]}
                elif source == "medmcqa_cot_llama31":
                    row = {"question": q, "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "response": a}
                else:
                    row = {
                        "conversations": [
                            {"from": "human", "value": q},
                            {"from": "gpt", "value": a[: len(a) // 2]},
                            {"from": "human", "value": text(rnd, 10)},
                            {"from": "gpt", "value": a[len(a) // 2 :]},
                        ]
                    }
                f.write(json.dumps(row) + "\n")
    with open(d / "aloe_beta_dpo.jsonl", "w") as f:
        for _ in range(n // 5):
            f.write(json.dumps({"prompt": text(rnd, 30), "chosen": text(rnd, 60), "rejected": text(rnd, 60)}) + "\n")
    return sum(plan.values()) + n // 5


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=200_000)
    ap.add_argument("--words", type=int, default=200)
    ap.add_argument("--keep", help="keep the work files here (default: a temporary folder, removed)")
    a = ap.parse_args(argv)
    d = Path(a.keep or tempfile.mkdtemp(prefix="data-prep-bench-"))
    total = corpus(d / "src", a.samples, a.words)
    for t in ("medqa_4options", "medmcqa"):
        (d / "eval").mkdir(exist_ok=True)
        (d / "eval" / f"{t}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in eval_fixtures.rows(t)))
    rows, _ = pipeline.run(d / "work", d / "out", d / "src", d / "eval")
    scale = 2_000_000 / total
    secs = sum(float(r[4]) for r in rows)
    rss = [float(r[6].replace(",", "")) for r in rows]
    peak, base = max(rss), min(rss)  # the interpreter alone vs the step that holds per-sample state
    print(f"\ndata_prep on {total:,} synthetic samples (~{a.words} words each), 2 cores")
    print(table(pipeline.HEADERS, rows))
    print(f"\nwhole pipeline: {secs:.0f} s, {total / secs:,.0f} samples/s, peak RSS {peak:,.0f} MB")
    print(
        f"extrapolated to 2M samples (linear in time; dedup memory grows with the corpus): "
        f"{secs * scale / 60:.1f} min (goal <= 30), peak RSS about {base + (peak - base) * scale:,.0f} MB "
        f"(goal <= 4096)"
    )
    if not a.keep:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
