"""Value checks the tools skip: numbers outside their valid range, and the recipe's deviations from the
values published for the model it states as `released_as` (recipes/published.yaml)."""

import fnmatch
import math

import yaml

from scripts import core

from . import recipe as rc

PUBLISHED = core.ROOT / "recipes" / "published.yaml"
INF = math.inf
# (file, dotted key pattern) -> (low, high, low inclusive); high is inclusive
RANGES = {
    ("sft", "learning_rate"): (0, 1, False),
    ("sft", "num_epochs"): (0, INF, False),
    ("sft", "max_steps"): (1, INF, True),
    ("sft", "warmup_steps"): (0, INF, True),
    ("sft", "weight_decay"): (0, 1, True),
    ("sft", "max_grad_norm"): (0, INF, False),
    ("sft", "micro_batch_size"): (1, INF, True),
    ("sft", "gradient_accumulation_steps"): (1, INF, True),
    ("sft", "sequence_len"): (1, INF, True),
    ("sft", "val_set_size"): (0, 1, True),
    ("recipe", "sft_total_batch"): (1, INF, True),
    ("merge", "*parameters.density"): (0, 1, False),
    ("merge", "*parameters.epsilon"): (0, 1, True),
    ("dpo", "*args.adam.lr"): (0, 1, False),
    ("dpo", "*args.model.beta"): (0, INF, False),
    ("dpo", "*args.train.max_epochs"): (1, INF, True),
    ("dpo", "*args.data.max_len"): (1, INF, True),
    ("dpo", "*args.train.micro_batch_size"): (1, INF, True),
    ("dpo", "*args.train.batch_size"): (1, INF, True),
    ("dpo", "*args.ds.zero_stage"): (0, 3, True),
    ("dpo", "stages.*.chunks"): (1, INF, True),
    ("medprompt", "k"): (1, INF, True),
    ("medprompt", "ensembles"): (1, INF, True),
    ("medprompt", "temperature"): (0, 2, True),
    ("medprompt", "top_p"): (0, 1, False),
    ("medprompt", "max_tokens"): (1, INF, True),
    ("eval", "num_fewshot"): (0, INF, True),
    ("eval", "batch_size"): (1, INF, True),
}


def flatten(d, prefix=""):
    """{dotted key: leaf value}, list items numbered, as yamlfiles.key_lines names them."""
    items = d.items() if isinstance(d, dict) else enumerate(d) if isinstance(d, list) else None
    if items is None:
        return {prefix[:-1]: d}
    out = {}
    for k, v in items:
        out.update(flatten(v, f"{prefix}{k}."))
    return out


def check_ranges(r: rc.Recipe) -> list:
    out = []
    for stem in rc.FILES:
        for key, v in flatten(r.files[stem]).items():
            for (s, pat), (lo, hi, lo_in) in RANGES.items():
                if (
                    s != stem
                    or not fnmatch.fnmatchcase(key, pat)
                    or isinstance(v, bool)
                    or not isinstance(v, (int, float))
                ):
                    continue
                if not (lo <= v if lo_in else lo < v) or v > hi:
                    out.append(
                        r.problem(
                            stem,
                            key,
                            f"{v} is out of range: must be {'>=' if lo_in else '>'} {lo}"
                            + (f" and <= {hi}" if hi != INF else ""),
                        )
                    )
    return out


def published_for(r: rc.Recipe) -> tuple[dict, bool]:
    """({file: {dotted key: value}}, released): the values published for the recipe's `released_as`, or
    only those common to every released model when it states none or one not listed."""
    table = yaml.safe_load(PUBLISHED.read_text())
    released = r.raw["recipe"].get("released_as") in table["models"]
    own = dict(table["models"][r.raw["recipe"]["released_as"]]) if released else {}
    common = table["common"] if own.pop("common", True) else {}  # `common: false`: a model of another paper
    out = {stem: dict(keys) for stem, keys in common.items()}
    for stem, keys in own.items():
        out.setdefault(stem, {}).update(keys)
    return out, released


def deviations(r: rc.Recipe, published: dict) -> list:
    """[(file, dotted key, published, recipe)] where the recipe as written differs from the published value."""
    rows = []
    for stem, keys in published.items():
        flat = flatten(r.raw[stem])
        rows += [
            (stem, key, value, flat.get(key, "<absent>"))
            for key, value in keys.items()
            if flat.get(key, "<absent>") != value
        ]
    return rows
