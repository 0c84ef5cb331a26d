"""Preflight before `make data` and `make eval`: every data source and eval dataset opened, nothing trained.

Opens every source of data_prep/sources.yaml (the chosen set; streaming, first rows only) and checks its
id, config, split, the columns the entry maps and its converter on the sampled rows; then lists the
dataset of every lm-eval task the recipes use (Table 9 and the open-ended tasks) and fails one that reads
a repo holding a loading script. Prints one table per part; exits 1 on any mismatch, naming it.

  python -m scripts.drivers.data_check                          # the hub (needs network), every recipe's eval tasks
  python -m scripts.drivers.data_check --recipe recipes/aloe-beta-8b --sources upstream
  python -m scripts.drivers.data_check --hub-dir DIR            # offline: a folder laid out like the hub
"""

import argparse
import sys
import tempfile
from pathlib import Path

from scripts import core
from scripts.lib import cli, venv
from scripts.lib import recipe as rc


def eval_tasks(recipes: list) -> list:
    tasks = []
    for d in recipes:
        e = rc.load(d).files["eval"]
        tasks += [t for t in e["tasks"] + e["open_tasks"] if t not in tasks]
    return tasks


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", help="only this recipe's eval tasks (default: every recipe)")
    ap.add_argument("--sources", default="authors", help="source set of data_prep/sources.yaml: authors | upstream")
    ap.add_argument("--hub-dir", help="a folder laid out like the hub, <owner>/<repo> (default: the hub itself)")
    ap.add_argument("--rows", type=int, default=5, help="rows sampled per source")
    a = ap.parse_args(argv)
    recipes = [Path(a.recipe)] if a.recipe else sorted(p.parent for p in (core.ROOT / "recipes").glob("*/recipe.yaml"))
    found = venv.run("eval", ["lm_eval_datasets.py", "--include-path", rc.TASKS, *eval_tasks(recipes)], capture=True)
    if found.returncode:
        raise SystemExit(f"[data-check] {found.stderr.strip().splitlines()[-1]}")
    with tempfile.TemporaryDirectory() as tmp:
        datasets = Path(tmp) / "eval.json"
        datasets.write_text(found.stdout.strip().splitlines()[-1])
        cmd = [
            "python",
            "-m",
            "data_prep.check",
            "--sources",
            a.sources,
            "--rows",
            a.rows,
            "--eval",
            datasets,
            *(["--hub-dir", Path(a.hub_dir).resolve()] if a.hub_dir else []),
        ]
        extra = {"PYTHONPATH": str(core.ROOT), **({} if a.hub_dir else venv.ONLINE)}
        return venv.run("data", cmd, extra_env=extra).returncode


if __name__ == "__main__":
    sys.exit(cli.edge(main))
