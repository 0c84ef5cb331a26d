"""The dataset each lm-eval task reads (runs in .venv/eval): prints {task: {path, name, revision, data_files, yaml}}.

usage: lm_eval_datasets.py [--include-path DIR] TASK...
"""

import json

from lm_eval.tasks._yaml_loader import load_yaml
from lm_eval_task_paths import yaml_paths


def main():
    out = {}
    for task, path in yaml_paths(doc=__doc__).items():
        cfg = load_yaml(path, resolve_func=False, recursive=True)
        kwargs = cfg.get("dataset_kwargs") or {}
        out[task] = {
            "path": cfg.get("dataset_path"),
            "name": cfg.get("dataset_name"),
            "revision": kwargs.get("revision"),
            "data_files": kwargs.get("data_files"),
            "yaml": path,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
