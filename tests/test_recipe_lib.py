"""Recipe rendering and batch arithmetic, without any tool."""

from dataclasses import astuple

import pytest

from scripts import core
from scripts.lib import hardware, render, yamlfiles
from scripts.lib import recipe as rc

pytestmark = pytest.mark.unit

R8, R70 = core.ROOT / "recipes/aloe-beta-8b", core.ROOT / "recipes/aloe-beta-70b"


def test_overlay_replaces_deletes_and_merges():
    base = {"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]}
    out = yamlfiles.overlay(base, {"a": None, "b": {"c": 5}, "l": [9]})
    assert out == {"b": {"c": 5, "d": 3}, "l": [9]}
    assert base["a"] == 1  # the input is not modified


def test_published_batches_hold_on_published_hardware():
    for path in (R8, R70):
        r = rc.load(path)
        assert hardware.sft_batch(r).problems == [] and hardware.dpo_batch(r).problems == []
    b = hardware.sft_batch(rc.load(R8))
    world, micro, ga, total = b.world, b.micro, b.accum, b.total
    assert (world, micro, ga, total) == (32, 1, 4, 128)
    assert astuple(hardware.dpo_batch(rc.load(R8)))[:4] == (16, 1, 8, 128)
    assert astuple(hardware.dpo_batch(rc.load(R70)))[:4] == (100, 1, 1, 100)


def test_world_size_recomputes_grad_accum_or_names_the_key():
    b = hardware.sft_batch(rc.load(R8, world_size=8))
    ga, problems = b.accum, b.problems
    assert (ga, problems) == (16, [])
    problems = hardware.dpo_batch(rc.load(R70, world_size=8)).problems
    assert len(problems) == 1
    p = problems[0]
    assert p.file.endswith("aloe-beta-70b/dpo.yaml") and p.key == "train.batch_size" and p.line
    assert "100" in p.message and "8 GPUs" in p.message and "[1, 2, 4, 5, 10, 20, 25, 50, 100]" in p.message


def test_profile_changes_only_sizes_paths_and_cpu_settings(tmp_path):
    r = rc.load(R8)
    t = rc.load(R8, profile="cpu-tiny", kit=tmp_path)
    changed = {(stem, k) for stem in rc.FILES for k, _, _ in yamlfiles.diff(r.files[stem], t.files[stem])}
    # the published optimisation hyper-parameters are untouched
    for key in ("learning_rate", "lr_scheduler", "optimizer", "weight_decay", "num_epochs"):
        assert ("sft", key) not in changed
    assert ("dpo", "args.adam.lr") not in changed and ("dpo", "args.model.beta") not in changed
    assert t.files["sft"]["base_model"] == f"{tmp_path}/base"
    assert t.files["merge"]["models"][1]["model"] == f"{tmp_path}/instruct"
    assert "deepspeed" not in t.files["sft"] and "plugins" not in t.files["sft"]
    assert astuple(hardware.sft_batch(t))[:4] == (1, 2, 2, 4)


def test_unknown_profile_and_missing_recipe_are_clear(tmp_path):
    with pytest.raises(yamlfiles.RecipeError, match="no such profile"):
        rc.load(R8, profile="gpu-huge")
    with pytest.raises(yamlfiles.RecipeError, match="recipe folder not found"):
        rc.load(tmp_path / "nope")


def test_dpo_plan_is_five_chained_chunks_then_red_team():
    runs = render.dpo_runs(rc.load(R8))
    assert [(x["phase"], x["index"]) for x in runs] == [("stage1", i) for i in range(5)] + [("stage2", 0)]
    assert [x["args"]["adam.lr"] for x in runs] == [2e-7] * 5 + [1e-7]
    assert runs[3]["data"] == "@data.dpo_chunk_3"  # the token; the stage fills in the chunk file (scripts/dpo.py)
    argv = render.render_dpo_argv(runs[0], "m", "o")
    assert "--data.apply_chat_template" in argv and "--model.model_name_or_path" in argv
    assert not any(f in argv for f in ("--pretrain", "--bf16", "--flash_attn"))


def test_a_profile_extends_another_and_keeps_its_deletions():
    tiny, two = rc.load(R8, profile="cpu-tiny"), rc.load(R8, profile="cpu-tiny-2node")
    assert "deepspeed" not in two.files["sft"] and two.files["sft"] == tiny.files["sft"]
    assert two.files["recipe"]["hardware"]["dpo"] == {"gpus": 4, "nodes": 2}
    assert astuple(hardware.dpo_batch(two))[:4] == (4, 1, 1, 4)  # the same total batch of 4, accumulation derived


def test_hardware_entries_are_checked():
    r = rc.load(R70)
    assert hardware.check_hardware(r) == []
    r.files["recipe"]["hardware"]["dpo"]["nodes"] = 3
    r.files["recipe"]["hardware"]["sfft"] = {"gpus": 1, "nodes": 1}
    del r.files["recipe"]["hardware"]["eval"]
    msgs = sorted(f"{p.key}: {p.message}" for p in hardware.check_hardware(r))
    assert msgs == [
        "dpo: 100 GPUs cannot be spread evenly over 3 nodes",
        "hardware: hardware.eval needs integer gpus and nodes",
        "sfft: unknown hardware entry (did you mean 'sft'?)",
    ]
