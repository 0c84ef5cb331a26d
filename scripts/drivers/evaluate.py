"""`make eval`: an evaluation suite of a model, run by the stage the registry names for it (scripts/lib/stages.py
SUITES: mcqa, open, all and general by scripts/eval.py (lm-eval), safety, openmedqa and fields by their own judged
stages). Every other option is that stage's: `python -m scripts.<stage> --help` lists them.

  python -m scripts.drivers.evaluate --suite fields --model HPAI-BSC/Llama3.1-Aloe-Beta-8B
"""

import argparse
import sys

from scripts.lib import driver, stages


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    by_stage = ", ".join(f"{suite} ({stage})" for suite, stage in stages.SUITES.items())
    ap.add_argument("--suite", default="mcqa", choices=stages.SUITES, help=f"the suite and its stage: {by_stage}")
    known, _ = ap.parse_known_args(argv)  # --help and an unknown suite answer here, with every suite
    return driver.main(driver.stage_of(stages.suite_stage(known.suite)), argv)


if __name__ == "__main__":
    sys.exit(main())
