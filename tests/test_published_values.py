"""Every hyper-parameter the paper or model card publishes (recipes/published.yaml, from
../shared/reference/aloe_facts.md §2) appears once, with the published value, and every value in the
recipes carries its provenance tag."""

import json
import re

import pytest
import yaml
from conftest import ROOT

from scripts.lib import recipe as rc
from scripts.lib import values

RECIPES = ROOT / "recipes"

RELEASED = ["aloe-beta-8b", "aloe-beta-70b"]


def key_names(d):
    """Every mapping key at any depth (dpo's `train.batch_size` is one key)."""
    if isinstance(d, dict):
        for k, v in d.items():
            yield k
            yield from key_names(v)
    elif isinstance(d, list):
        for v in d:
            yield from key_names(v)


@pytest.mark.parametrize("recipe", RELEASED)
def test_published_values_match_and_appear_once(recipe):
    r = rc.load(RECIPES / recipe)
    published, released = values.published_for(r)
    assert released and len(published["sft"]) > 10, "recipes/published.yaml lacks this model"
    assert values.deviations(r, published) == []
    for stem, keys in published.items():
        for key in keys:
            parts = [p for p in key.split(".") if not p.isdigit()]
            leaf = key.split("args.")[-1] if "args." in key else parts[-1]
            holders = sorted({s for s, d in r.raw.items() if leaf in set(key_names(d))})
            # per-stage or per-model keys recur by design; merge.yaml's base_model is the merge base (a choice)
            if leaf not in ("gpus", "nodes", "model", "adam.lr", "chunks", "base_model"):
                assert holders == [stem], f"{leaf} is set in {holders}, expected only {stem}.yaml"


def test_a_changed_published_value_is_a_deviation():
    r = rc.load(RECIPES / "aloe-beta-8b")
    r.raw["dpo"]["stages"][1]["args"]["adam.lr"] = 2e-7
    assert values.deviations(r, values.published_for(r)[0]) == [("dpo", "stages.1.args.adam.lr", 1e-7, 2e-7)]


def test_zero3_is_in_the_one_shared_deepspeed_config():
    ds = json.loads((RECIPES / "deepspeed/zero3_bf16.json").read_text())
    assert ds["zero_optimization"]["stage"] == 3
    for recipe in RELEASED:
        assert (
            yaml.safe_load((RECIPES / recipe / "sft.yaml").read_text())["deepspeed"]
            == "recipes/deepspeed/zero3_bf16.json"
        )


VALUE_LINE = re.compile(r"^\s*(- )?[\w.]+:\s+[^#\s]")
UNTAGGED_OK = {
    "ds_type",
    "field_messages",
    "path",
    "name",
    "released_as",
    "base_config",
    "files",
    "output_dir",
    "dataset_prepared_path",
    "data.chosen_key",
    "data.rejected_key",
    "sft",
    "merge",
    "dpo",
    "- medqa_train",
    "- medmcqa_train",
}


@pytest.mark.parametrize("recipe", RELEASED)
def test_every_value_says_where_it_comes_from(recipe):
    missing = []
    for f in sorted((RECIPES / recipe).glob("*.yaml")):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            key = line.strip().lstrip("- ").split(":")[0]
            if VALUE_LINE.match(line) and key not in UNTAGGED_OK and not re.search(r"\[(P|D|C)\]", line):
                if f.name == "eval.yaml" and line.strip().startswith("- "):
                    continue
                missing.append(f"{f.name}:{n}: {line.strip()}")
    assert not missing, "values without a [P]/[D]/[C] tag:\n" + "\n".join(missing)
