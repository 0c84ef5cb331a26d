"""Every hyper-parameter the paper or model card publishes (recipes/published.yaml, from
../shared/reference/aloe_facts.md §2) appears once, with the published value, and every value in the
recipes carries its provenance tag."""

import json

import pytest
import yaml
from conftest import ROOT, every_value_says_where_it_comes_from, published_values_match_and_appear_once

from scripts.lib import recipe as rc
from scripts.lib import values

pytestmark = pytest.mark.unit

RECIPES = ROOT / "recipes"

RELEASED = ["aloe-beta-8b", "aloe-beta-70b"]


@pytest.mark.parametrize("recipe", RELEASED)
def test_published_values_match_and_appear_once(recipe):
    published_values_match_and_appear_once(recipe)


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


@pytest.mark.parametrize("recipe", RELEASED)
def test_every_value_says_where_it_comes_from(recipe):
    every_value_says_where_it_comes_from(recipe)
