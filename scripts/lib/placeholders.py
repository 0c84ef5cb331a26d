"""Placeholders: how a tool-native recipe file (sft.yaml, merge.yaml, dpo.yaml) names an upstream stage's output,
and `fill`, the one way every stage swaps them for the real paths.

A placeholder is a token `@<stage>.<output key>`: a stage and one of its output keys as the registry declares
them (scripts/lib/stages.py SPECS, `outputs`): `@sft.model`, `@sft.prepared`, `@data.sft`, `@data.dpo_redteam`.
A templated key keeps its field, filled where the file expands it: dpo.yaml's `files: "@data.dpo_chunk_{i}"`
becomes `@data.dpo_chunk_0`, ... per chunk. A token names no folder, so a copied recipe folder runs as it is;
YAML reserves a leading `@`, so the files quote it. Each stage fills the tokens of its `fills` (`placeholders`);
check-recipes reports a file that does not name one, and any `@` string that is no stage's output key."""

import re
from pathlib import Path

from scripts.core import AloeError

from .stages import SPECS, _pattern

TOKEN = re.compile(r"@(?P<stage>[A-Za-z0-9_-]+)\.(?P<key>[A-Za-z0-9_{}]+)$")


def placeholder(stage: str, key: str) -> str:
    """The token that names output `key` of `stage`: @<stage>.<key>."""
    return f"@{stage}.{key}"


def tokens(stage: str | None = None) -> list:
    """Every token of the registry (or of one stage), as a recipe file may write it (templates unfilled)."""
    return [
        placeholder(s.name, k)
        for s in SPECS.values()
        if stage in (None, s.name) and TOKEN.match(placeholder(s.name, "x"))
        for k in s.outputs
    ]


def known(token: str) -> bool:
    """Whether a token names an output of the registry: a declared key, or a value of a templated one."""
    m = TOKEN.match(token)
    spec = SPECS.get(m["stage"]) if m else None
    return bool(spec) and any(k == m["key"] or _pattern(k).match(m["key"]) for k in spec.outputs)


def required(stage: str) -> dict:
    """{name: token} of what the stage's tool-native file must name (its `fills`)."""
    sp, out = SPECS[stage], {}
    for name in sp.fills:
        up, key = sp.reads[name] if name in sp.reads else (stage, name)
        out[name] = placeholder(up, key)
    return out


def placeholders(stage: str, r, inputs: dict, partial: Path | None = None) -> dict:
    """{token: real path} of the stage's `fills`: upstream outputs from `inputs`, its own outputs where they
    are produced (under `partial`): what `fill` puts into the stage's tool-native file."""
    sp = SPECS[stage]
    return {
        ph: inputs[name]["path"] if name in sp.reads else str(partial / sp.outputs[name])
        for name, ph in required(stage).items()
    }


def _strings(x, prefix=""):
    """[(dotted key, string)] of every string in a parsed file; keys as yamlfiles.key_lines names them."""
    if isinstance(x, dict):
        return [s for k, v in x.items() for s in _strings(v, f"{prefix}{k}.")]
    if isinstance(x, list):
        return [s for i, v in enumerate(x) for s in _strings(v, f"{prefix}{i}.")]
    return [(prefix[:-1], x)] if isinstance(x, str) else []


def placeholder_problems(r) -> list:
    """What check-recipes reports: a tool-native file that does not name a token its stage fills, a string
    starting with `@` that is no output of the registry, a DPO stage whose `files` is no output of the data stage."""
    out = []
    for stage in (s for s in SPECS.values() if s.fills):
        named = {v for _, v in _strings(r.files[stage.name])}
        out += [
            r.problem(stage.name, name, f"names no {ph}: the {stage.name} stage fills that placeholder")
            for name, ph in required(stage.name).items()
            if ph not in named
        ]
    for stem, cfg in r.files.items():
        for key, v in _strings(cfg):
            if v.startswith("@") and not known(v):
                m = TOKEN.match(v)
                listed = (m and tokens(m["stage"])) or tokens()  # the stage's tokens, else every one
                out.append(r.problem(stem, key, f"{v} is no output of a stage; known: {', '.join(listed)}"))
    for n, st in enumerate(r.files["dpo"].get("stages") or []):
        files, m = str(st.get("files")), TOKEN.match(str(st.get("files")))
        if files.startswith("@") and not known(files):
            continue  # named above
        if not (m and m["stage"] == "data"):
            out.append(
                r.problem(
                    "dpo",
                    f"stages.{n}.files",
                    f"stage {st.get('name')}: {files} is no output of the data stage; its outputs: "
                    f"{', '.join(tokens('data'))}",
                )
            )
    return out


def by_placeholder(stage: str, outputs: dict) -> dict:
    """{token: output} of a finished stage's outputs (data's chunk files as dpo.yaml names them:
    @data.dpo_chunk_0, ...): by output key, wherever the files lie."""
    return {placeholder(stage, key): o for key, o in outputs.items()}


def fill(cfg, values: dict, where: str, required=()):
    """cfg with every string equal to a token of `values` replaced by its value; a required token the file
    does not name is an error naming the file (the stage could not point the tool at its input)."""
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
        raise AloeError(f"{where}: names no {', '.join(missing)}: the stage fills that placeholder with its input")
    return out
