"""The whole data pipeline: each step a process of its own (python -m data_prep.<step>), streaming from
the previous step's file. Prints a table per step (rows in, out, dropped, seconds, rows/s, peak RSS), then
the rows decontamination removed per benchmark and source when it removed any, and writes work/report.json
(every step's report) and the training-ready files under --out-dir.

  python -m data_prep.pipeline --work DIR --out-dir DIR [--sources authors|upstream] [--sources-dir DIR | --hub-dir DIR]
                              [--eval-dir DIR] [--seed 0] [--max-reject-rate 0.02]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from scripts.core import ROOT, table

from .decontaminate import matrix_tables

STEPS = ["normalize", "clean", "dedup", "decontaminate", "prune", "template", "mix"]


def run_step(step: str, args: list) -> tuple:
    """(seconds, peak RSS in MB) of one step run as its own process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", f"data_prep.{step}", *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"data_prep.{step} failed (exit {proc.returncode})")
    return time.perf_counter() - t0, usage.ru_maxrss / 1024


def run(
    work,
    out_dir,
    sources_dir=None,
    eval_dir=None,
    seed=0,
    chunks=5,
    judge=None,
    sources="authors",
    hub_dir=None,
    redteam=None,
    max_reject_rate=None,
):
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    rows, reports, prev = [], {}, None
    for step in STEPS:
        out, rej, rep = work / f"{step}.jsonl", work / f"{step}.rejects.jsonl", work / f"{step}.report.json"
        args = ["--out", out, "--rejects", rej, "--report", rep]
        if step == "normalize":
            args += (
                ["--sources", sources]
                + (["--sources-dir", sources_dir] if sources_dir else [])
                + (["--hub-dir", hub_dir] if hub_dir else [])
                + (["--redteam", redteam] if redteam else [])
                + (["--max-reject-rate", max_reject_rate] if max_reject_rate is not None else [])
            )
        else:
            args += ["--in", prev]
        if step == "decontaminate":
            args += (["--eval-dir", eval_dir] if eval_dir else []) + (["--judge", judge] if judge else [])
        if step in ("template", "mix"):
            args += ["--seed", seed]
        secs, rss = run_step(step, args)
        r = json.loads(rep.read_text())
        reports[step] = r
        rows.append([step, r["in"], r["out"], r["dropped"], f"{secs:.1f}", f"{r['in'] / secs:,.0f}", f"{rss:,.0f}"])
        prev = out
    secs, rss = run_step("outputs", ["--in", prev, "--out-dir", out_dir, "--chunks", chunks, "--seed", seed])
    rows.append(
        [
            "outputs",
            reports["mix"]["out"],
            reports["mix"]["out"],
            0,
            f"{secs:.1f}",
            f"{reports['mix']['out'] / secs:,.0f}",
            f"{rss:,.0f}",
        ]
    )
    (work / "report.json").write_text(json.dumps(reports, indent=2))
    return rows, reports


HEADERS = ["step", "in", "out", "dropped", "s", "rows/s", "peak RSS MB"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--sources-dir", help="local <source>.jsonl files (default: the hub)")
    ap.add_argument("--hub-dir", help="a folder laid out like the hub, <owner>/<repo> (default: the hub)")
    ap.add_argument("--sources", default="authors", help="source set of data_prep/sources.yaml: authors | upstream")
    ap.add_argument("--redteam", help="config of the red-team source to take (default: every red-team source)")
    ap.add_argument("--eval-dir", help="local test sets for decontamination (default: the hub)")
    ap.add_argument("--judge", help="OpenAI-compatible URL of the decontamination judge (off by default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunks", type=int, default=5)
    ap.add_argument("--max-reject-rate", type=float, help="normalize: the share of a source's rows it may lose")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))

    rows, reports = run(
        a.work,
        a.out_dir,
        a.sources_dir,
        a.eval_dir,
        a.seed,
        a.chunks,
        a.judge,
        a.sources,
        a.hub_dir,
        a.redteam,
        a.max_reject_rate,
    )
    print(table(HEADERS, rows))
    matrix = reports["decontaminate"]["contamination"]
    if matrix["counts"]:
        print(f"\ntraining rows decontamination removed, per benchmark and source:\n{matrix_tables(matrix)}")


if __name__ == "__main__":
    main()
