"""What the tools run, rendered from a recipe: axolotl's config (grad accum for the world size), the DPO plan
expanded into its runs (one per chunk of a phase) and each run's OpenRLHF flags, and the repository files a recipe
names."""

import copy
from pathlib import Path

from .recipe import ROOT, Recipe


def dpo_runs(r: Recipe, files_for=None):
    """Expand the DPO plan into runs: [{phase, index, of, data, args}] in order (a phase: one entry of dpo.yaml
    `stages`, stage1 = the chunks, stage2 = red team); model chaining is the caller's."""
    plan = r.files["dpo"]
    runs = []
    for st in plan["stages"]:
        n = int(st.get("chunks", 1))
        for i in range(n):
            data = files_for(st, i) if files_for else st["files"].format(i=i)
            args = {**(plan.get("args") or {}), **(st.get("args") or {})}
            runs.append({"phase": st["name"], "index": i, "of": n, "data": data, "args": args})
    return runs


def render_flags(args: dict) -> list:
    """OpenRLHF dotted flags from a mapping; true booleans become bare flags, false ones are left out."""
    out = []
    for k, v in args.items():
        if v is True:
            out.append(f"--{k}")
        elif v is False or v is None:
            continue
        else:
            out += [f"--{k}", str(v)]
    return out


def referenced_files(r: Recipe):
    """Repository files the recipe names (stage outputs under runs/ are checked by the stages)."""
    out = []
    cands = [
        ("sft", "deepspeed", r.files["sft"].get("deepspeed")),
        ("recipe", "base_config", r.files["recipe"].get("base_config")),
    ]
    for stem, key, val in cands:
        if val and not str(val).startswith("runs/") and not (ROOT / val).exists() and not Path(val).exists():
            out.append(r.problem(stem, key, f"file not found: {val}"))
    return out


def render_sft(r: Recipe, grad_accum: int | None = None) -> dict:
    """The axolotl config a stage runs: repository paths made absolute, grad accum derived for its layout (the
    stage paths are placeholders that scripts/lib/stages.fill replaces)."""
    cfg = copy.deepcopy(r.files["sft"])
    if cfg.get("deepspeed") and not Path(cfg["deepspeed"]).is_absolute():
        cfg["deepspeed"] = str(ROOT / cfg["deepspeed"])
    if grad_accum:
        cfg["gradient_accumulation_steps"] = grad_accum
    return cfg


def render_dpo_argv(run: dict, model: str, output_dir: str) -> list:
    return [
        "--model.model_name_or_path",
        str(model),
        "--data.dataset",
        str(run["data"]),
        "--ckpt.output_dir",
        str(output_dir),
        *render_flags(run["args"]),
    ]
