"""make report: one self-contained HTML page for a recipe run, or for a model's evaluations (`make eval MODEL=`), to
read offline (no server, nothing fetched).

Per verify table: reported against measured with a 95% Wilson interval, delta, tolerance and verdict; every measured
number opens its samples (lm-eval --log_samples: question, options, the model's choice, the gold answer, correct or
not; filter correct / incorrect); the judged suites per sample (safety: prompt, answer, Llama Guard's verdict;
OpenMedQA: question, answer, reference, the judge's verdict; Table 10: each question's field, filtered by field);
each Medprompt stage per question (members, attempts, votes, majority, cost); the diff-eval comparisons of the run's
evaluations (runs/diff-eval/*.json with a side in it, and those given with --diff): the settings that differ, per
task accuracy, b, c and McNemar's p, and the flipped questions; the training curves (TensorBoard event files where
the run has them, else the SFT manifest's losses and OpenRLHF's progress log per DPO run); each stage's manifest
(inputs and hashes, recipe values with their [P]/[D]/[C] tags, environment lock stamp, code hash, tool versions,
seed, batch, wall time) and each job's plan with its GPU-hours, energy and CO2 (P-BETA Appendix D's method, where
the paper publishes hours) and the wall time measured.

  python -m scripts.drivers.report --run runs/aloe-beta-8b-cpu-tiny
  python -m scripts.drivers.report --run runs/aloe-beta-8b-cpu-tiny --screenshot results/report/smoke.png
  python -m scripts.drivers.report --model HPAI-BSC/Llama3.1-Aloe-Beta-8B       (runs/eval/HPAI-BSC_Llama3.1-...)
  python -m scripts.drivers.report --model-eval runs/eval/<model> --diff runs/diff-eval/a--b.json
"""

import argparse
import sys
from pathlib import Path

from scripts import core
from scripts.lib import cli, stages
from scripts.lib.openrlhf_log import STEP
from scripts.lib.report import browser, collect, render


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", help="a recipe run folder, runs/<recipe>[-<profile>] (make smoke: "
                       "runs/aloe-beta-8b-cpu-tiny)")  # fmt: skip
    which.add_argument("--model-eval", metavar="FOLDER", help="a model's evaluations without a recipe run: "
                       "runs/eval/<model>, as `make eval MODEL=` writes it (no plan, no training curves)")  # fmt: skip
    which.add_argument("--model", help="the same, named as given to `make eval MODEL=` (a hub id or path)")
    ap.add_argument("--diff", action="append", default=[], metavar="JSON", help="a diff-eval comparison to show "
                    "(make diff-eval writes runs/diff-eval/*.json); repeatable")  # fmt: skip
    ap.add_argument("--runs", default=str(core.ROOT / "runs"), help="root of run outputs (default runs/): its "
                    "diff-eval/ comparisons with a side in the run are shown")  # fmt: skip
    ap.add_argument("--verify", default=str(core.ROOT / "results" / "verify"), help="where `make verify MODEL=` "
                    "writes (default results/verify/): with --model-eval, the tables measured in it")  # fmt: skip
    ap.add_argument("--out", help="the HTML file (default results/report/<run or model folder name>.html)")
    ap.add_argument("--screenshot", metavar="PNG", help="also a full-page screenshot (headless Chromium)")
    a = ap.parse_args(argv)
    folder = a.run or a.model_eval or stages.model_eval_dir(a.runs, a.model, "mcqa").parent  # above its suites
    data = collect.collect(folder, STEP, model_eval=not a.run, verify_root=a.verify, diff_files=a.diff,
                           diff_root=Path(a.runs) / "diff-eval")  # fmt: skip
    out = render.write(data, a.out or core.ROOT / "results" / "report" / f"{data['run']}.html")
    print(f"report: {out}")
    if a.screenshot:
        browser.screenshot(out, Path(a.screenshot))
        print(f"screenshot: {a.screenshot}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.edge(main))
