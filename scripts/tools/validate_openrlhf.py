"""Validate OpenRLHF train_dpo command lines with OpenRLHF's own parser (runs in .venv/dpo).

usage: validate_openrlhf.py JOBS.json      JOBS.json: [{"id", "argv": [...]}]
Runs `openrlhf.cli.train_dpo` as __main__ with its argparse and post-parse checks, and stops at
get_strategy, before any distributed or model work. Prints {id: {"problems": [...], "args": {...}}}.
"""

import argparse
import contextlib
import io
import json
import re
import runpy
import sys
from pathlib import Path

import openrlhf_cpu

openrlhf_cpu.install()  # a no-op where CUDA exists; lets OpenRLHF import on a CPU machine
import openrlhf.utils  # noqa: E402


class _Parsed(Exception):
    def __init__(self, args):
        super().__init__()
        self.parsed = args


def _stop(args):
    raise _Parsed(args)


openrlhf.utils.get_strategy = _stop


def _plain(ns):
    return {k: _plain(v) for k, v in vars(ns).items()} if hasattr(ns, "__dict__") else ns


def check(argv):
    sys.argv = ["openrlhf.cli.train_dpo", *argv]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            runpy.run_module("openrlhf.cli.train_dpo", run_name="__main__", alter_sys=True)
    except _Parsed as p:
        return [], _plain(p.parsed)
    except SystemExit:
        msg = err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else "argparse exited"
        m = re.search(r"unrecognized arguments: (.*)", msg)
        if m:
            flags = [a for a in m.group(1).split() if a.startswith("--")]
            return [
                {
                    "key": f[2:],
                    "message": f"OpenRLHF 0.11 does not accept {f} (the dotted CLI replaced the "
                    "flat flags, e.g. --pretrain -> --model.model_name_or_path)",
                }
                for f in flags
            ], {}
        m = re.search(r"argument --([\w.]+)", msg)
        return [{"key": m.group(1) if m else "-", "message": msg}], {}
    except Exception as e:  # a post-parse assertion of train_dpo
        return [{"key": "-", "message": f"{type(e).__name__}: {e}"}], {}
    return [{"key": "-", "message": "train_dpo returned without reaching get_strategy"}], {}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("jobs", help="JSON file of validation jobs")
    jobs = json.loads(Path(ap.parse_args().jobs).read_text())
    out = {}
    for j in jobs:
        problems, args = check(j["argv"])
        out[j["id"]] = {"problems": problems, "args": args}
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
