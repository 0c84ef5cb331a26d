"""The dataset each lm-eval task reads (runs in .venv/eval): prints {task: {path, name, revision, data_files}}.

usage: lm_eval_datasets.py [--include-path DIR] TASK...
"""
import argparse
import json

from lm_eval.tasks import TaskManager
from lm_eval.tasks._yaml_loader import load_yaml


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--include-path")
    ap.add_argument("tasks", nargs="+")
    a = ap.parse_args()
    index = TaskManager(include_path=a.include_path).task_index
    missing = [t for t in a.tasks if t not in index]
    if missing:
        raise SystemExit(f"lm-eval knows no task(s) {missing}")
    out = {}
    for task in a.tasks:
        cfg = load_yaml(index[task].yaml_path, resolve_func=False, recursive=True)
        kwargs = cfg.get("dataset_kwargs") or {}
        out[task] = {"path": cfg.get("dataset_path"), "name": cfg.get("dataset_name"),
                     "revision": kwargs.get("revision"), "data_files": kwargs.get("data_files"),
                     "yaml": str(index[task].yaml_path)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
