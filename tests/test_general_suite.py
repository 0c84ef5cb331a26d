"""SUITE=general: the Open LLM Leaderboard 2 group as lm-eval defines it, with the leaderboard's own shots and
generation budgets, the chat template and multi-turn shots; a missing task extra fails before lm-eval runs."""

import pytest
from conftest import ROOT, run_py, tool

from scripts import eval as ev
from scripts.core import AloeError
from scripts.lib import recipe as rc

RECIPES = sorted(p.parent for p in (ROOT / "recipes").glob("*/recipe.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
@pytest.mark.unit
def test_every_recipe_names_the_leaderboard_group(recipe):
    e = rc.load(recipe).files["eval"]
    assert ev.suite_tasks(e, "general") == ["leaderboard"]
    args = ev.suite_args(e, "general")
    assert "--num_fewshot" not in args and "--gen_kwargs" not in args  # each task's own shots and budget
    assert args == ["--apply_chat_template", "--fewshot_as_multiturn"]
    assert ev.suite_args(e, "mcqa")[:2] == ["--num_fewshot", 0]


@pytest.mark.chain
def test_lm_eval_defines_the_group_and_its_six_tasks():
    paths = tool(
        "eval",
        "lm_eval_task_paths.py",
        "leaderboard",
        "leaderboard_ifeval",
        "leaderboard_math_hard",
        "leaderboard_bbh",
        "leaderboard_gpqa",
        "leaderboard_mmlu_pro",
        "leaderboard_musr",
    )
    assert paths["leaderboard"].endswith("leaderboard/leaderboard.yaml")


@pytest.mark.unit
def test_missing_task_extras_are_named_before_lm_eval_runs(monkeypatch):
    monkeypatch.setattr(ev, "GENERAL_MODULES", ("json", "no_such_module_for_aloe"))
    with pytest.raises(AloeError, match="eval lacks: no_such_module_for_aloe"):
        ev.check_general_env("eval")
    monkeypatch.setattr(ev, "GENERAL_MODULES", ("json",))
    ev.check_general_env("eval")


@pytest.mark.unit
def test_verify_says_general_has_no_reported_table(tmp_path):
    f = tmp_path / "results_x.json"
    f.write_text('{"results": {}}')
    p = run_py("scripts.verify", "--suite", "general", "--results", f, check=False)
    assert p.returncode == 1 and "no reported table for suite 'general'" in p.stderr
