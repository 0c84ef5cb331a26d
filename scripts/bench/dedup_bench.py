"""Dedup benchmark (issue 26): data_prep.dedup, the whole step on every core, each setting in its own process, on
two synthetic corpora:
- shared: --docs rows of 60-400 words (mean about 200; 4 in 5 QA, 1 in 5 multi-turn) with 5% exact copies and 5%
  near copies of earlier rows, 5-15% of their words replaced, half in one or two spans, half at scattered places
  (the corpus datatrove was measured on when the kit chose its dedup: recall 0.71); recall: copies removed / planted;
- templated MCQ: --mcq questions, each a short vignette of its own, one of five stems ("Which of the following
  is the most likely diagnosis?") and four options of its own, with 5% exact and 5% near copies planted;
  precision: planted copies / rows removed.
Settings: the MinHash engines, fed the same shingles and verified alike: numpy (data_prep.dedup.minhash), rensa
(Rust) and datasketch's LeanMinHash, each where installed; then the paper's datatrove layout (14 bands x 8 rows,
0.72) unverified, and this layout unverified (every candidate removed). docs/s: wall time, every core;
docs/s/core: docs per CPU second of the step and its workers (whatever else the machine runs). Peak RSS: the
step's main process, which holds the per-sample state.
Goals: >= 10,000 docs/s per core, recall of all planted copies >= 0.71 (datatrove's), of scattered-edit copies
>= 0.5, precision >= 0.99 on the templated MCQs.

  python -m scripts.bench.dedup_bench [--docs 50000] [--mcq 20000] [--settings numpy,rensa,...] [--keep DIR]
"""

import argparse
import itertools
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from data_prep import dedup
from scripts.bench.data_prep_bench import WORDS
from scripts.core import ROOT, table

STEMS = [
    "Which of the following is the most likely diagnosis?",
    "Which of the following is the most appropriate next step in management?",
    "Which of the following is the most likely cause of these findings?",
    "Which of the following drugs is the first-line treatment?",
    "Which of the following findings is most characteristic of this condition?",
]
SETTINGS = {
    "numpy": "numpy (verified)",
    "rensa": "rensa (verified)",
    "datasketch": "datasketch LeanMinHash (verified)",
    "paper": "paper: 14x8, unverified",
    "unverified": f"{dedup.BANDS}x{dedup.ROWS}, unverified",
}
HEADERS = ["setting", "docs/s", "docs/s/core", "recall all planted", "recall near", "recall scattered",
           "precision templated MCQ", "candidates rejected", "peak RSS MB"]  # fmt: skip


def rensa_minhash(flat, offsets, n):
    from rensa import RMinHash

    m = RMinHash.digest_matrix_from_flat_token_hashes(flat.astype(np.uint64), offsets.astype(np.uint64), n, 1)
    return np.array(m.to_rows(), dtype=np.uint32)


def datasketch_minhash(flat, offsets, n):
    from datasketch import LeanMinHash, MinHash

    perms = MinHash(num_perm=n, seed=1).permutations
    out = np.empty((len(offsets) - 1, n), dtype=np.uint32)
    for d, (a, b) in enumerate(itertools.pairwise(offsets)):
        m = MinHash(num_perm=n, hashfunc=int, permutations=perms, scheme="affine32")
        m.update_batch(flat[a:b])
        out[d] = LeanMinHash(m).hashvalues
    return out


def child(setting: str, work: str) -> dict:
    """Run in a process of its own: the step on both corpora under one setting (the workers inherit it)."""
    if setting in ("rensa", "datasketch"):
        try:
            __import__(setting)
        except ImportError:
            return {"missing": setting}
        dedup.minhash = rensa_minhash if setting == "rensa" else datasketch_minhash
    if setting == "paper":
        dedup.BANDS, dedup.ROWS = 14, 8
    if setting in ("paper", "unverified"):
        dedup.VERIFY = dict.fromkeys(dedup.VERIFY, 0.0)
    out = {}
    for corpus in ("shared", "mcq"):
        t0, c0 = time.perf_counter(), cpu()
        done = f"{work}/{corpus}.{setting}"  # new files: replacing a large one costs its removal
        rep = dedup.run(f"{work}/{corpus}.jsonl", f"{done}.out", f"{done}.rej", f"{done}.rep")
        out[corpus] = {
            "s": time.perf_counter() - t0,
            "cpu": cpu() - c0,
            "removed": [json.loads(x)["row"]["id"] for x in open(f"{done}.rej")],
            "rejected": sum(
                v["changed"].get("candidate rejected by verification", 0) for v in rep["per_source"].values()
            ),
        }
    out["peak"] = int(next(x for x in open("/proc/self/status") if x.startswith("VmHWM:")).split()[1]) * 1024
    return out


def cpu() -> float:
    """CPU seconds of this process and its finished workers."""
    return sum(
        r.ru_utime + r.ru_stime for r in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    )


def edited(rnd, words, label):
    """A near copy: 5-15% of the words replaced, in one or two spans or at scattered places."""
    out, k = list(words), max(1, round(len(words) * rnd.uniform(0.05, 0.15)))
    if label == "scattered":
        places = rnd.sample(range(len(words)), k)
    else:
        cuts = [k] if rnd.random() < 0.5 else [k // 2, k - k // 2]
        places = [s + j for c in cuts for s in [rnd.randrange(len(words) - c + 1)] for j in range(c)]
    for p in places:
        out[p] = rnd.choice(WORDS)
    return out


def write(path: Path, make, n: int, seed: int) -> dict:
    """n rows, originals from make(rnd) -> (words, words -> messages) and planted copies of earlier originals:
    5% exact, 2.5% edited in spans, 2.5% at scattered places; {id: label} of the copies."""
    rnd, originals, labels = random.Random(seed), [], {}
    with open(path, "w") as f:
        for i in range(n):
            r = rnd.random()
            label = None if not originals or r >= 0.1 else "exact" if r < 0.05 else rnd.choice(["span", "scattered"])
            if label:
                words, to_messages = rnd.choice(originals)
                words = words if label == "exact" else edited(rnd, words, label)
                labels[f"bench:{i}"] = label
            else:
                words, to_messages = make(rnd)
                originals.append((words, to_messages))
            f.write(json.dumps({"id": f"bench:{i}", "source": "bench", "messages": to_messages(words)}) + "\n")
    return labels


def shared_doc(rnd):
    words = rnd.choices(WORDS, k=int(rnd.triangular(60, 400, 130)))
    n = len(words)
    cuts = [0, n // 5, n] if rnd.random() < 0.8 else [0, n // 5, n // 2, n // 2 + 10, n]
    turns = list(zip(itertools.cycle(["user", "assistant"]), itertools.pairwise(cuts)))
    return words, lambda w: [{"role": role, "content": " ".join(w[a:b])} for role, (a, b) in turns]


def mcq_doc(rnd):
    head = f"A {rnd.randint(2, 90)}-year-old {rnd.choice(['man', 'woman', 'boy', 'girl'])} presents with"
    words = rnd.choices(WORDS, k=rnd.randint(8, 40)) + rnd.choice(STEMS).split()
    for letter in "ABCD":
        words += [f"{letter}.", *rnd.choices(WORDS, k=rnd.randint(1, 3))]
    answer = f"Answer: [{rnd.choice('ABCD')}]"
    return words, lambda w: [
        {"role": "user", "content": f"{head} {' '.join(w)}"},
        {"role": "assistant", "content": answer},
    ]


def measure(setting: str, work: Path, labels: dict, docs: int) -> list:
    code = "import json, sys; from scripts.bench.dedup_bench import child; print(json.dumps(child(*sys.argv[1:])))"
    p = subprocess.run([sys.executable, "-c", code, setting, work], env={**os.environ, "PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True)  # fmt: skip
    if p.returncode:
        raise SystemExit(f"{setting} failed:\n{p.stderr[-2000:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    if "missing" in r:
        return [SETTINGS[setting], f"not installed ({r['missing']})", *["-"] * 7]
    removed, mcq_removed, planted = set(r["shared"]["removed"]), set(r["mcq"]["removed"]), labels["shared"]
    kinds = [("exact", "span", "scattered"), ("span", "scattered"), ("scattered",)]  # all planted, near, scattered
    recall = [[i for i, v in planted.items() if v in k] for k in kinds]
    return [
        SETTINGS[setting],
        f"{docs / r['shared']['s']:,.0f}",
        f"{docs / r['shared']['cpu']:,.0f}",
        *(f"{len(removed.intersection(ids)) / len(ids):.3f}" for ids in recall),
        f"{len(mcq_removed.intersection(labels['mcq'])) / max(len(mcq_removed), 1):.4f}",
        f"{r['shared']['rejected'] + r['mcq']['rejected']:,}",
        f"{r['peak'] / 2**20:,.0f}",
    ]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=50_000, help="rows of the shared corpus (default 50000)")
    ap.add_argument("--mcq", type=int, default=20_000, help="rows of the templated MCQ corpus (default 20000)")
    ap.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated, of {', '.join(SETTINGS)}")
    ap.add_argument("--keep", help="keep the corpora and outputs here (default: a temporary folder, removed)")
    a = ap.parse_args(argv)
    work = Path(a.keep or tempfile.mkdtemp(prefix="dedup-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        labels = {c: write(work / f"{c}.jsonl", make, n, seed) for c, make, n, seed in
                  (("shared", shared_doc, a.docs, 0), ("mcq", mcq_doc, a.mcq, 1))}  # fmt: skip
        rows = [measure(s, work, labels, a.docs) for s in a.settings.split(",")]
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"data_prep.dedup on {a.docs:,} shared rows and {a.mcq:,} templated MCQs, {os.cpu_count()} cores")
    print(table(HEADERS, rows))


if __name__ == "__main__":
    main()
