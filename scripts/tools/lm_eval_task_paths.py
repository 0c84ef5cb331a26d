"""Where lm-eval defines each task (runs in .venv/eval): prints {task: yaml_path} as JSON.

usage: lm_eval_task_paths.py [--include-path DIR] TASK...
"""

import argparse
import json

from lm_eval.tasks import TaskManager


def yaml_paths(argv=None, doc=__doc__) -> dict:
    """{task: yaml path} of the tasks named on the command line (an unknown task is an error)."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--include-path")
    ap.add_argument("tasks", nargs="+")
    a = ap.parse_args(argv)
    index = TaskManager(include_path=a.include_path).task_index
    missing = [t for t in a.tasks if t not in index]
    if missing:
        raise SystemExit(f"lm-eval knows no task(s) {missing}")
    return {t: str(index[t].yaml_path) for t in a.tasks}


if __name__ == "__main__":
    print(json.dumps(yaml_paths()))
