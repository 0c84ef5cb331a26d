"""Placeholders: how a tool-native recipe file (sft.yaml, merge.yaml, dpo.yaml) names an upstream stage's output,
and `fill`, the one way every stage swaps them for the real paths. check-recipes reports a file that names none."""

from pathlib import Path

from .stages import SPECS, _pattern


def placeholder(recipe_dir: str, stage: str, rel: str) -> str:
    """How a recipe file names an output of `stage`: runs/<recipe folder>/<stage folder>/<path in it>."""
    return f"runs/{SPECS[stage].folder.format(run=recipe_dir)}/{rel}"


def required(stage: str, recipe_dir: str) -> dict:
    """{name: placeholder} of what the stage's tool-native file must name (its `fills`)."""
    sp, out = SPECS[stage], {}
    for name in sp.fills:
        up, key = sp.reads[name] if name in sp.reads else (stage, name)
        out[name] = placeholder(recipe_dir, up, SPECS[up].outputs[key])
    return out


def placeholders(stage: str, r, inputs: dict, partial: Path | None = None) -> dict:
    """{placeholder: real path} of the stage's `fills`: upstream outputs from `inputs`, its own outputs where they
    are produced (under `partial`): what `fill` puts into the stage's tool-native file."""
    sp = SPECS[stage]
    return {
        ph: inputs[name]["path"] if name in sp.reads else str(partial / sp.outputs[name])
        for name, ph in required(stage, r.path.name).items()
    }


def placeholder_problems(r) -> list:
    """What check-recipes reports: a tool-native file that does not name a placeholder its stage fills, a DPO
    stage whose `files` is no output of the data stage."""

    def strings(x) -> set:
        if isinstance(x, dict):
            x = list(x.values())
        return set().union(*map(strings, x)) if isinstance(x, list) else {x} if isinstance(x, str) else set()

    out = []
    for stage in (s for s in SPECS.values() if s.fills):
        named = strings(r.raw[stage.name])
        out += [
            r.problem(stage.name, name, f"names no {ph}: the {stage.name} stage fills that placeholder")
            for name, ph in required(stage.name, r.path.name).items()
            if ph not in named
        ]
    data = [_pattern(placeholder(r.path.name, "data", d)) for d in SPECS["data"].outputs.values()]
    for st in r.raw["dpo"].get("stages") or []:
        files = str(st.get("files"))
        if not any(p.match(files.replace("{i}", "0")) for p in data):
            out.append(r.problem("dpo", "files", f"stage {st.get('name')}: {files} is no output of the data stage"))
    return out


def by_placeholder(recipe_dir: str, stage: str, stage_dir: Path, outputs: dict) -> dict:
    """{placeholder: output} of a finished stage's outputs (data's chunk files as dpo.yaml names them)."""
    where = Path(stage_dir).resolve()  # a runs/ behind a symlink: the recorded and the asked path may differ
    return {
        placeholder(recipe_dir, stage, Path(o["path"]).resolve().relative_to(where).as_posix()): o
        for o in outputs.values()
    }


def fill(cfg, values: dict, where: str, required=()):
    """cfg with every string equal to a placeholder of `values` replaced by its value; a required placeholder the
    file does not name is an error naming the file (the stage could not point the tool at its input)."""
    seen = set()

    def walk(x):
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        if isinstance(x, str) and x in values:
            seen.add(x)
            return values[x]
        return x

    out = walk(cfg)
    missing = [p for p in required if p not in seen]
    if missing:
        raise SystemExit(f"{where}: names no {', '.join(missing)}: the stage fills that placeholder with its input")
    return out
