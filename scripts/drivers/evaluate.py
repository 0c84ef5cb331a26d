"""`make eval`: the stage that runs the suite (stages.suite_stage: safety, openmedqa and fields have their own,
every other suite is scripts/eval.py), started with the same arguments; `--help` is that stage's.

  python -m scripts.drivers.evaluate --suite fields --model HPAI-BSC/Llama3.1-Aloe-Beta-8B
"""

import os
import sys

from scripts.lib import stages


def suite_of(argv: list) -> str:
    for i, arg in enumerate(argv):
        if arg == "--suite" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--suite="):
            return arg.split("=", 1)[1]
    return "mcqa"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    module = stages.spec(stages.suite_stage(suite_of(argv))).module
    os.execv(sys.executable, [sys.executable, "-m", module, *argv])


if __name__ == "__main__":
    main()
