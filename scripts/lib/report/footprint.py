"""Each planned job's cost: GPU-hours, energy and CO2 by P-BETA Appendix D's method (scripts/lib/chain.py footprint:
the wall hours the paper publishes for its stage, scaled to the job's layout, times its GPUs) where the recipe's
hardware has published hours, and the wall time the stage's manifest measured."""

import dataclasses
from pathlib import Path

from scripts.core import read_json
from scripts.lib import chain, stages
from scripts.lib.manifest import SCHEMA

from .paths import local, shown

FIELDS = {f.name for f in dataclasses.fields(chain.Job)}


def job(j: dict) -> chain.Job:
    """A plan's job record as the chain.Job it was written from."""
    return chain.Job(**{"plan": Path(), "folder": Path(), "args": [], **{k: v for k, v in j.items() if k in FIELDS}})


def stage_manifest(j: dict, run: Path) -> tuple:
    """(folder as shown, manifest or None) of what the job ran: its stage folder, or for a DPO run job (--upto N)
    the N-th run's folder in it."""
    if not j.get("folder"):
        return None, None
    folder, args = local(j["folder"], run), [str(a) for a in j.get("args") or []]
    spec = stages.SPECS.get(j.get("stage"))
    if spec and spec.jobs == "runs" and "--upto" in args[:-1] and args[args.index("--upto") + 1].isdigit():
        folder = next(iter(sorted(folder.glob(f"{int(args[args.index('--upto') + 1]):02d}-*"))), folder)
    f = folder / "manifest.json"
    m = read_json(f) if f.is_file() else None
    return shown(folder, run), m if isinstance(m, dict) and m.get("schema") == SCHEMA else None


def costs(jobs: list, run: Path) -> dict:
    """{"jobs": {name: {footprint: (GPU-h, kWh, kg CO2) or None, folder, wall_s}}, "all": the footprint's total or
    None, "wall_s": the measured total, and the method's constants}."""
    fp = chain.footprint([job(j) for j in jobs])
    rows = {}
    for j in jobs:
        folder, m = stage_manifest(j, run)
        rows[j["name"]] = {"footprint": fp.get(j["name"]), "folder": folder, "wall_s": (m or {}).get("wall_s")}
    walls = [r["wall_s"] for r in rows.values() if r["wall_s"] is not None]
    return {"jobs": rows, "all": fp.get("all"), "wall_s": sum(walls) if walls else None,
            "kw_per_gpu": chain.KW_PER_GPU, "kg_co2_per_kwh": chain.KG_CO2_PER_KWH}  # fmt: skip
