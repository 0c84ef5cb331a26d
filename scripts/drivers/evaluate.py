"""`make eval`: the stage that runs the suite (stages.suite_stage: safety, openmedqa and fields have their own,
every other suite is scripts/eval.py), started with the same arguments; `--help` is that stage's.

  python -m scripts.drivers.evaluate --suite fields --model HPAI-BSC/Llama3.1-Aloe-Beta-8B
"""

import argparse
import os
import sys

from scripts.lib import stages


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(add_help=False)  # --suite as the stage's own parser reads it
    ap.add_argument("--suite", default="mcqa")
    module = stages.spec(stages.suite_stage(ap.parse_known_args(argv)[0].suite)).module
    os.execv(sys.executable, [sys.executable, "-m", module, *argv])


if __name__ == "__main__":
    main()
