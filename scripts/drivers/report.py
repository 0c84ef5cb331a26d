"""make report: one self-contained HTML page for a recipe run, to read offline (no server, nothing fetched).

Per verify table: reported against measured with a 95% Wilson interval, delta, tolerance and verdict; every measured
number opens its samples (lm-eval --log_samples: question, options, the model's choice, the gold answer, correct or
not; filter correct / incorrect); each Medprompt stage per question (members, attempts, votes, majority, cost);
the training curves (TensorBoard event files where the run has them, else the SFT manifest's losses and OpenRLHF's
progress log per DPO run); each stage's manifest (inputs and hashes, recipe values with their [P]/[D]/[C] tags,
environment lock stamp, code hash, tool versions, seed, batch, wall time) and each job's plan.

  python -m scripts.drivers.report --run runs/aloe-beta-8b-cpu-tiny
  python -m scripts.drivers.report --run runs/aloe-beta-8b-cpu-tiny --screenshot results/report/smoke.png
"""

import argparse
import sys
from pathlib import Path

from scripts import core
from scripts.lib import cli
from scripts.lib.openrlhf_log import STEP
from scripts.lib.report import browser, collect, render


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a recipe run folder, runs/<recipe>[-<profile>] (make smoke: "
                    "runs/aloe-beta-8b-cpu-tiny)")  # fmt: skip
    ap.add_argument("--out", help="the HTML file (default results/report/<run name>.html)")
    ap.add_argument("--screenshot", metavar="PNG", help="also a full-page screenshot (headless Chromium)")
    a = ap.parse_args(argv)
    data = collect.collect(a.run, STEP)
    out = render.write(data, a.out or core.ROOT / "results" / "report" / f"{data['run']}.html")
    print(f"report: {out}")
    if a.screenshot:
        browser.screenshot(out, Path(a.screenshot))
        print(f"screenshot: {a.screenshot}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.edge(main))
