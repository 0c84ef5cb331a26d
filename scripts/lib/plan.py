"""The rendered plan of one job (runs/<run>/plan/<job>.json): recipe + profile + layout, as checked.

`make reproduce-*` and `make smoke` render every job's plan before anything runs (scripts/lib/chain.py) and run the
batch check on it; each stage script then loads its plan (`--plan`) and never reads the recipe. The plan records the
hash of every file it was rendered from: a file edited after planning is refused, naming what changed.
"""

import json
import sys
from pathlib import Path

import yaml

from scripts import core
from scripts.core import AloeError

from . import hardware, yamlfiles
from . import recipe as rc

SCHEMA = "aloe-repro/plan@2"  # @2: the profile's stand-ins (models) travel in the plan


def sources(r: rc.Recipe) -> dict:
    """{file: sha256} of everything the plan was rendered from: the recipe files, the profile (and what it
    extends), and the repository files they name (DeepSpeed config, base config)."""
    files = [r.file(stem) for stem in rc.FILES]
    name = r.profile
    while name:
        files.append(rc.PROFILES / f"{name}.yaml")
        name = (yaml.safe_load(files[-1].read_text()) or {}).get("extends")
    for val in (r.files["sft"].get("deepspeed"), r.files["recipe"].get("base_config")):
        if val and (core.ROOT / val).is_file():
            files.append(core.ROOT / val)
    return {_rel(f): core.sha256_path(f) for f in files}


def _rel(p: Path) -> str:
    p = Path(p).resolve()
    return str(p.relative_to(core.ROOT)) if p.is_relative_to(core.ROOT) else str(p)


def render(r: rc.Recipe, runs, job=None) -> dict:
    """The plan of one job (or of a stage run on its own: job None)."""
    return {
        "schema": SCHEMA,
        "job": job,  # {name, stage, nodes, gpus, batch, parallel}
        "runs": str(runs),
        "recipe": {
            "dir": _rel(r.path),
            "profile": r.profile,
            "world_size": r.world_size,
            "kit": str(r.kit),
            "layout": r.layout,
            "models": r.models,
        },
        "hardware": {s: r.hardware(s) for s in hardware.HARDWARE_ENTRIES},  # as the job runs it (layout applied)
        "files": r.files,
        "raw": r.raw,
        "sources": sources(r),
    }


def write(plan: dict, path: Path) -> Path:
    core.write_json_atomic(path, plan)
    return path


class PlanError(AloeError):
    pass


def load(path) -> tuple:
    """(the recipe as planned, the plan); refused when the plan is of another schema or a source changed since."""
    path = Path(path)
    try:
        p = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise PlanError(f"{path}: not a readable plan ({e})")
    if p.get("schema") != SCHEMA:
        raise PlanError(f"{path}: plan schema {p.get('schema')!r}, this code reads {SCHEMA!r}: plan again")
    rec = p["recipe"]
    r = rc.Recipe(
        core.ROOT / rec["dir"],
        p["raw"],
        p["files"],
        rec["profile"],
        rec["world_size"],
        Path(rec["kit"]),
        {s: tuple(v) for s, v in rec["layout"].items()},
        rec["models"],
    )
    changed = [
        f for f, h in p["sources"].items() if not (core.ROOT / f).is_file() or core.sha256_path(core.ROOT / f) != h
    ]
    if changed:
        lines, differs = what_changed(r, changed)
        if differs:
            raise PlanError(f"{path}: changed since this job was planned:\n{lines}\n"
                            "plan again (the same make reproduce / make smoke command renders and checks a new plan)")  # fmt: skip
        print(f"[plan] {', '.join(changed)} edited since planning, no value differs: running the plan", file=sys.stderr)
    return r, p


def what_changed(planned: rc.Recipe, changed: list) -> tuple:
    """(the changed files and every value that now differs, whether anything that runs differs): an edited comment
    changes nothing; a changed value, or a changed file the plan only names (a DeepSpeed config), does."""
    lines = [f"  {f}" for f in changed]
    try:
        now = rc.load(planned.path, planned.profile, planned.world_size, planned.kit)
    except yamlfiles.RecipeError as e:
        return "\n".join([*lines, f"  and the recipe no longer loads: {e}"]), True
    now_files = json.loads(json.dumps(now.files))  # as the plan stores them
    diffs = [(stem, *d) for stem in rc.FILES for d in yamlfiles.diff(planned.files[stem], now_files[stem])]
    lines += [f"    {stem}.yaml {k}: {a!r} -> {b!r}" for stem, k, a, b in diffs]
    named_only = [f for f in changed if not f.endswith(".yaml")]
    return "\n".join(lines), bool(diffs or named_only)
