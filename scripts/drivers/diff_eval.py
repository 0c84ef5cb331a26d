"""make diff-eval: two evaluations of the same suite compared question by question (evals/diff.py): the settings
that differ (chat template, few-shot, scoring mode, batch size, backend, dtype, lm-eval and tool versions, task
configs), per task the accuracy of each side, b and c (right in A only, right in B only) with McNemar's exact test,
and the questions that flipped. Prints a markdown table; writes it (<out>.md) and everything (<out>.json).

  python -m scripts.drivers.diff_eval --a runs/<run>/eval-mcqa --b runs/eval/<model>/mcqa
  python -m scripts.drivers.diff_eval --a runs/<run> --b /elsewhere/lm-eval-output --show 20 --out diff/mine

A side (--a, --b): a kit evaluation stage folder (runs/<run>/eval-<suite>, runs/eval/<model>/<suite>: its lm-eval
output, checked against its manifest's hash, and the manifest's settings), a folder holding one of those (a recipe
run, runs/eval/<model>), or lm-eval's own output from anywhere (the --output_path folder of a run with
--log_samples, its model-named folder, or one results_<date>.json in it).
"""

import argparse
import re
import sys
from pathlib import Path

from evals import diff
from scripts import core
from scripts.core import AloeError
from scripts.lib import cli, stages
from scripts.lib import manifest as mf


def evaluation(path) -> tuple:
    """(the lm-eval output, the stage manifest or None) of a side."""
    p = Path(path)
    if not p.exists():
        raise AloeError("no such file or folder", file=p)
    if p.is_file():
        return p, None
    if (p / "manifest.json").is_file():
        m = mf.read_done(p, "diff-eval")
        if m["stage"] not in stages.SPECS or stages.spec(m["stage"]).results != "lm_eval":
            raise AloeError(f"a {m['stage']} stage folder without an lm_eval output: not an lm-eval evaluation", file=p)
        return mf.results(p, "diff-eval"), m
    if (p / "lm_eval").is_dir():
        return p / "lm_eval", None
    found = sorted(c for c in p.iterdir() if (c / "lm_eval").is_dir())
    if len(found) > 1:
        names = ", ".join(c.name for c in found)
        raise AloeError(f"several evaluations ({names}): give one of them, e.g. {found[0]}", file=p)
    return evaluation(found[0]) if found else (p, None)


def name(path) -> str:
    """A file name for a side: the last two parts of its path."""
    parts = Path(path).resolve().parts[-2:]
    return "_".join(re.sub(r"[^A-Za-z0-9_.-]+", "_", x).lstrip(".")[:80] or "_" for x in parts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="side A: an evaluation stage folder, a run folder, or lm-eval output")
    ap.add_argument("--b", required=True, help="side B: the same kinds")
    ap.add_argument(
        "--show", type=cli.positive, default=10, help="flipped questions listed per task in the table (default 10)"
    )
    ap.add_argument("--runs", default=str(core.ROOT / "runs"), help="root of run outputs (default runs/)")
    ap.add_argument("--out", help="writes <out>.json and <out>.md (default <runs>/diff-eval/<A>--<B>)")
    a = ap.parse_args(argv)
    sides = []
    for given in (a.a, a.b):
        lm_eval, manifest = evaluation(given)
        sides.append(diff.load(lm_eval, manifest) | {"path": given})
    report = diff.compare(*sides)
    if a.out:
        out = Path(a.out).with_suffix("") if a.out.endswith((".json", ".md")) else Path(a.out)
    else:
        out = stages.inside(a.runs, Path(a.runs) / "diff-eval" / f"{name(a.a)}--{name(a.b)}")
    text = diff.report_markdown(report, a.show)
    core.write_json_atomic(out.with_name(out.name + ".json"), report)
    out.with_name(out.name + ".md").write_text(text)
    print(text)
    print(f"[diff-eval] wrote {out}.json and {out}.md")
    return 0


if __name__ == "__main__":
    sys.exit(cli.edge(main))
