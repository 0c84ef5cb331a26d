"""Validate axolotl configs with axolotl's own validator (runs in .venv/sft).

usage: validate_axolotl.py JOBS.json
JOBS.json: [{"id", "config": {...}, "base_config": path|null, "world_size": n, "gpu": bool}]
Prints one JSON object: {id: {"problems": [{"key", "message"}], "resolved": {...}}}.
With gpu=true the config is validated as on an H100 node (bf16, sm_90, world_size GPUs), and
normalize_config resolves bf16 as a GPU would. base_config is the base model's public config.json,
served from a private offline hub cache so that nothing is downloaded.
"""

import argparse
import json
import os
import tempfile
from pathlib import Path


def seed_hub_cache(repo: str, config_json: Path, hub: Path):
    d = hub / ("models--" + repo.replace("/", "--"))
    sha = "0" * 40
    (d / "refs").mkdir(parents=True, exist_ok=True)
    (d / "refs" / "main").write_text(sha)
    (d / "snapshots" / sha).mkdir(parents=True, exist_ok=True)
    (d / "snapshots" / sha / "config.json").write_text(config_json.read_text())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("jobs", help="JSON file of validation jobs")
    jobs = json.loads(Path(ap.parse_args().jobs).read_text())
    hf_home = Path(tempfile.mkdtemp(prefix="axolotl-validate-"))
    os.environ["HF_HOME"] = str(hf_home)
    os.environ["HF_HUB_CACHE"] = str(hf_home / "hub")
    for job in jobs:
        if job.get("base_config"):
            seed_hub_cache(job["config"]["base_model"], Path(job["base_config"]), hf_home / "hub")

    import axolotl.utils.config as ac
    from axolotl.integrations.config import merge_input_args
    from axolotl.utils.dict import DictDefault

    out = {}
    for job in jobs:
        raw, problems = job["config"], []
        cfg = DictDefault(json.loads(json.dumps(raw)))
        try:
            ac.prepare_plugins(cfg)  # registers plugin keys (liger_*) into the schema
            _, schema = merge_input_args()
            names = set(schema.model_fields) | {f.alias for f in schema.model_fields.values() if f.alias}
            for k in raw:
                if k not in names:
                    problems.append(
                        {
                            "key": k,
                            "message": "unknown axolotl key (axolotl would drop it silently)",
                            "known": sorted(names),
                        }
                    )
            if job.get("gpu"):
                cfg = ac.validate_config(
                    cfg,
                    capabilities={
                        "bf16": True,
                        "fp8": True,
                        "tf32": True,
                        "n_gpu": job["world_size"],
                        "compute_capability": "sm_90",
                    },
                    env_capabilities={"torch_version": "2.13.0"},
                )
                ac.is_torch_bf16_gpu_available = lambda: True
            else:
                cfg = ac.validate_config(cfg)
            ac.normalize_config(cfg)
            ac.normalize_cfg_datasets(cfg)
        except Exception as e:  # axolotl raises ValueError / pydantic errors: report, don't crash
            problems.append({"key": _key_of(e), "message": f"{type(e).__name__}: {str(e)[:1200]}"})
        resolved = {
            k: str(cfg.get(k))
            for k in (
                "bf16",
                "fp16",
                "attn_implementation",
                "sample_packing",
                "micro_batch_size",
                "gradient_accumulation_steps",
                "learning_rate",
                "model_config_type",
            )
        }
        out[job["id"]] = {"problems": problems, "resolved": resolved}
    print(json.dumps(out))


def _key_of(e):
    errs = getattr(e, "errors", None)
    if callable(errs):
        try:
            loc = errs()[0].get("loc") or ()
            return ".".join(str(x) for x in loc) or "-"
        except Exception:
            pass
    return "-"


if __name__ == "__main__":
    main()
