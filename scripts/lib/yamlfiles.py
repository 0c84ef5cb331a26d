"""Recipe files as YAML with line numbers: read (a missing file, bad YAML and keys written twice named with their
line), locate a dotted key's line, suggest the nearest known key, overlay one mapping on another, diff two; and the
problem type every recipe check reports (file:line: key: message)."""

import copy
import difflib
from dataclasses import dataclass
from pathlib import Path

import yaml

from scripts.core import AloeError


@dataclass
class Problem:
    file: str
    key: str
    message: str
    line: int | None = None

    def __str__(self):
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}"


class RecipeError(AloeError):
    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def key_lines(text: str) -> tuple[dict, list]:
    """({dotted key: line} for every mapping key, [(dotted key, line)] of keys written twice in one mapping).
    List items are numbered (`models.0.model`); OpenRLHF's dotted keys stay one component (`args.adam.lr`)."""
    lines, dups = {}, []

    def walk(node, prefix):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for k, v in node.value:
                dotted = prefix + str(k.value)
                if k.value in seen:
                    dups.append((dotted, k.start_mark.line + 1))
                seen.add(k.value)
                lines.setdefault(dotted, k.start_mark.line + 1)
                walk(v, dotted + ".")
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                lines.setdefault(f"{prefix}{i}", v.start_mark.line + 1)
                walk(v, f"{prefix}{i}.")

    walk(yaml.compose(text, Loader=yaml.SafeLoader), "")
    return lines, dups


def locate(path: Path, key: str) -> int | None:
    """Line of a key in a YAML file: the dotted key itself, else the first key it ends (best effort)."""
    try:
        lines = key_lines(Path(path).read_text())[0]
    except (OSError, yaml.YAMLError):
        return None
    if key in lines:
        return lines[key]
    return next((n for k, n in lines.items() if k.endswith("." + key)), None)


def suggest(key, known):
    m = difflib.get_close_matches(key, list(known), n=1, cutoff=0.75)
    return f" (did you mean {m[0]!r}?)" if m else ""


def overlay(base, over, keep_none=False):
    """Deep-merge `over` onto `base`; a None in `over` deletes the key (or is kept, to stack two
    overlays); lists are replaced."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if v is None and not keep_none:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = overlay(out[k], v, keep_none)
        else:
            out[k] = copy.deepcopy(v)
    return out


def map_values(obj, fn):
    if isinstance(obj, dict):
        return {k: map_values(v, fn) for k, v in obj.items()}
    if isinstance(obj, list):
        return [map_values(v, fn) for v in obj]
    return fn(obj)


def _as_map(x):
    return dict(enumerate(x)) if isinstance(x, list) else x


def diff(base, new, prefix=""):
    """(key, before, after) for every leaf a profile changed; lists of equal length are compared item-wise."""
    rows = []
    for k in sorted(set(base) | set(new), key=str):
        a, b = base.get(k, "<absent>"), new.get(k, "<absent>")
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            a, b = _as_map(a), _as_map(b)
        if isinstance(a, dict) and isinstance(b, dict):
            rows += diff(a, b, f"{prefix}{k}.")
        elif a != b:
            rows.append((f"{prefix}{k}", a, b))
    return rows


def read_yaml(path: Path):
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise RecipeError([Problem(str(path), "-", "file is missing")])
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise RecipeError([Problem(str(path), "-", f"not valid YAML: {e}", line + 1 if line is not None else None)])
    if not isinstance(data, dict):
        raise RecipeError([Problem(str(path), "-", "expected a mapping at the top level")])
    dups = key_lines(path.read_text())[1]  # YAML keeps the last of two equal keys without a word
    if dups:
        raise RecipeError(
            [Problem(str(path), k, "key written twice in one mapping (YAML keeps only the last)", n) for k, n in dups]
        )
    return data
