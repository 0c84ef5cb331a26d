"""Where lm-eval defines each task (runs in .venv/eval): prints {task: yaml_path} as JSON.

usage: lm_eval_task_paths.py [--include-path DIR] TASK...
"""
import argparse
import json

from lm_eval.tasks import TaskManager


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--include-path")
    ap.add_argument("tasks", nargs="+")
    a = ap.parse_args()
    index = TaskManager(include_path=a.include_path).task_index
    missing = [t for t in a.tasks if t not in index]
    if missing:
        raise SystemExit(f"lm-eval knows no task(s) {missing}")
    print(json.dumps({t: str(index[t].yaml_path) for t in a.tasks}))


if __name__ == "__main__":
    main()
