"""Validate mergekit configs with mergekit's own model and merge-method registry (runs in .venv/merge).

usage: validate_mergekit.py JOBS.json     JOBS.json: [{"id", "config": {...}}]
Prints {id: {"problems": [{"key", "message", "known"}]}}. Pydantic alone accepts unknown keys,
unknown methods, misspelt parameters and missing required ones; those are checked here against
MergeConfiguration's fields and the method's declared parameters. Nothing is downloaded.
"""

import argparse
import json
from pathlib import Path

from mergekit import merge_methods
from mergekit.config import MergeConfiguration


def fields(model):
    return set(model.model_fields) | {f.alias for f in model.model_fields.values() if f.alias}


def check(raw):
    problems = []
    top = fields(MergeConfiguration)
    problems += [
        {"key": k, "message": "unknown mergekit key (mergekit would ignore it)", "known": sorted(top)}
        for k in raw
        if k not in top
    ]
    try:
        cfg = MergeConfiguration.model_validate(raw)
    except Exception as e:
        return problems + [{"key": "-", "message": f"{type(e).__name__}: {str(e)[:1200]}"}]
    try:
        method = merge_methods.get(cfg.merge_method)
    except Exception as e:
        return problems + [
            {
                "key": "merge_method",
                "value": cfg.merge_method,
                "message": f"unknown merge method {cfg.merge_method!r}: {e}",
                "known": sorted(m.spec.name for m in merge_methods.registered_methods()),
            }
        ]
    shared = {p.name for p in method.spec.shared_parameters}
    per_model = {p.name for p in method.spec.input_parameters}
    for k in raw.get("parameters") or {}:
        if k not in shared | per_model:
            problems.append(
                {"key": k, "message": f"not a parameter of {cfg.merge_method}", "known": sorted(shared | per_model)}
            )
    for m in raw.get("models") or []:
        for k in m.get("parameters") or {}:
            if k not in per_model:
                problems.append(
                    {
                        "key": k,
                        "message": f"not a per-model parameter of {cfg.merge_method} (model {m.get('model')})",
                        "known": sorted(per_model),
                    }
                )
    top_params = raw.get("parameters") or {}
    for p in method.spec.parameters:  # mergekit only finds a missing one mid-merge, tensor by tensor
        if not p.required or p.name in top_params:
            continue
        if p in method.spec.shared_parameters:
            problems.append({"key": "parameters", "message": f"{cfg.merge_method} requires parameter {p.name!r}"})
            continue
        for i, m in enumerate(raw.get("models") or []):
            if m.get("model") == raw.get("base_model") and p.scope.name == "NON_BASE":
                continue
            if p.name not in (m.get("parameters") or {}):
                message = f"{cfg.merge_method} requires parameter {p.name!r} for model {m.get('model')}"
                problems.append({"key": f"models.{i}.parameters", "message": message})
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("jobs", help="JSON file of validation jobs")
    jobs = json.loads(Path(ap.parse_args().jobs).read_text())
    print(json.dumps({j["id"]: {"problems": check(j["config"])} for j in jobs}))


if __name__ == "__main__":
    main()
