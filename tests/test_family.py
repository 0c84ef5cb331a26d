"""The whole Aloe family: the five recipes in one check-recipes table, each red-team stage on its own model's
Egida set, the Alpha checked only against what was published for it, verify finding every model's numbers,
a recipe ported to the tiny Qwen kit, and the Qwen-7B recipe's whole chain on CPU (one run per session, on a
copy of its folder under another name)."""

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, every_value_says_where_it_comes_from, published_values_match_and_appear_once, run_py, tool
from conftest import check_recipes as check

from scripts import verify
from scripts.lib import manifest as mf
from scripts.lib import recipe as rc
from scripts.lib import values

RECIPES = ["aloe-beta-8b", "aloe-beta-70b", "qwen2.5-aloe-beta-7b", "qwen2.5-aloe-beta-72b", "llama3-aloe-8b-alpha"]
EGIDA = {
    "aloe-beta-8b": "Egida-DPO-Meta-Llama-3.1-8B-Instruct",
    "aloe-beta-70b": "Egida-DPO-Meta-Llama-3.1-70B-Instruct",
    "qwen2.5-aloe-beta-7b": "Egida-DPO-Qwen2.5-7B-Instruct",
    "qwen2.5-aloe-beta-72b": "Egida-DPO-Qwen2.5-72B-Instruct",
}
KIT = ROOT / "runs" / "test-chain" / "tiny-kit"  # the chain fixture's kit: built once, shared


@pytest.fixture(scope="module")
def table():
    p = check()
    assert p.returncode == 0, p.stdout + p.stderr
    return {
        tuple(c.strip() for c in line.split("|")[:2]): [c.strip() for c in line.split("|")]
        for line in p.stdout.splitlines()
        if line.split("|")[0].strip() in RECIPES
    }


@pytest.mark.chain
def test_check_recipes_tables_all_five_recipes_with_their_batch_arithmetic(table):
    assert {name for name, _ in table} == set(RECIPES)
    assert table[("qwen2.5-aloe-beta-72b", "sft")][2:] == ["Qwen/Qwen2.5-72B", "96", "1", "2", "192", "1e-05", "4"]
    assert table[("qwen2.5-aloe-beta-7b", "sft")][2:] == ["Qwen/Qwen2.5-7B", "32", "1", "4", "128", "1e-05", "4"]
    assert table[("qwen2.5-aloe-beta-72b", "dpo stage1")][3:7] == ["100", "1", "1", "100"]
    assert table[("qwen2.5-aloe-beta-72b", "merge")][2] == "dare_ties: sft + Qwen/Qwen2.5-72B-Instruct"
    assert table[("llama3-aloe-8b-alpha", "sft")][2] == "meta-llama/Meta-Llama-3-8B"


@pytest.mark.parametrize("name", sorted(EGIDA))
@pytest.mark.chain
def test_each_red_team_stage_reads_its_own_models_egida_set(table, name):
    assert table[(name, "dpo stage2")][2] == f"HPAI-BSC/Egida ({EGIDA[name]})"


@pytest.mark.chain
def test_a_red_team_stage_on_another_models_egida_set_is_refused(tmp_path):
    copy = tmp_path / "aloe-beta-70b"
    shutil.copytree(ROOT / "recipes/aloe-beta-70b", copy)
    text = (copy / "dpo.yaml").read_text()
    (copy / "dpo.yaml").write_text(text.replace(EGIDA["aloe-beta-70b"], EGIDA["aloe-beta-8b"]))
    p = check(f"RECIPE={copy}")
    assert p.returncode != 0
    line = text[: text.index(EGIDA["aloe-beta-70b"])].count("\n") + 1
    assert f"dpo.yaml:{line}: stages.1.config: {EGIDA['aloe-beta-8b']} differs from the published" in p.stderr, p.stderr


@pytest.mark.unit
def test_the_alpha_is_held_to_its_own_published_values_only():
    alpha = rc.load(ROOT / "recipes/llama3-aloe-8b-alpha")
    published, released = values.published_for(alpha)
    assert released and "sequence_len" not in published["sft"]  # the Beta's 16K is not the Alpha's
    assert published["sft"]["base_model"] == "meta-llama/Meta-Llama-3-8B"
    assert values.deviations(alpha, published) == []
    qwen = rc.load(ROOT / "recipes/qwen2.5-aloe-beta-72b")
    published, _ = values.published_for(qwen)
    assert published["sft"]["learning_rate"] == 1e-5 and published["recipe"]["sft_total_batch"] == 192


@pytest.mark.parametrize("name", RECIPES[2:])
@pytest.mark.unit
def test_every_value_of_the_new_recipes_says_where_it_comes_from(name):
    every_value_says_where_it_comes_from(name)


@pytest.mark.parametrize("name", ["qwen2.5-aloe-beta-7b", "qwen2.5-aloe-beta-72b"])
@pytest.mark.unit
def test_the_qwen_recipes_hold_every_published_value_once(name):
    published_values_match_and_appear_once(name)


@pytest.mark.parametrize(
    "model, table_name",
    [
        ("HPAI-BSC/Llama3.1-Aloe-Beta-8B", "table9"),
        ("HPAI-BSC/Llama3.1-Aloe-Beta-70B", "table9"),
        ("HPAI-BSC/Qwen2.5-Aloe-Beta-7B", "table9"),
        ("HPAI-BSC/Qwen2.5-Aloe-Beta-72B", "table9"),
        ("HPAI-BSC/Llama3-Aloe-8B-Alpha", "leaderboard"),
    ],
)
@pytest.mark.unit
def test_verify_finds_the_reported_numbers_of_every_aloe_model(model, table_name):
    reported = yaml.safe_load(verify.REPORTED.read_text())
    found = verify.reporting(reported, ["table9", "leaderboard"], "0-shot", model)
    assert found == [table_name]
    _, _, row = verify.reported_row(reported, table_name, "0-shot", model)
    assert len([v for v in row.values() if v is not None]) >= 6


ALPHA_RUN = {
    "aloe_pubmedqa": 0.77,
    "medmcqa": 0.5881,
    "medqa_4options": 0.6237,
    "mmlu_anatomy": 0.6815,
    "mmlu_clinical_knowledge": 0.7321,
    "mmlu_college_biology": 0.7708,
    "mmlu_college_medicine": 0.6358,
    "mmlu_medical_genetics": 0.79,
    "mmlu_professional_medicine": 0.7206,
}


@pytest.mark.parametrize("medmcqa, ok", [(0.5881, True), (0.55, False)])
@pytest.mark.unit
def test_verify_compares_the_alpha_against_the_leaderboard(tmp_path, medmcqa, ok):
    res = tmp_path / "results_alpha.json"
    res.write_text(
        json.dumps(
            {
                "results": {
                    t: {"acc,none": medmcqa if t == "medmcqa" else v, "acc_stderr,none": 0.005}
                    for t, v in ALPHA_RUN.items()
                }
            }
        )
    )
    p = run_py(
        "scripts.verify",
        "--model",
        "HPAI-BSC/Llama3-Aloe-8B-Alpha",
        "--results",
        res,
        "--out",
        tmp_path / "report",
        check=False,
    )
    assert "Open Medical-LLM Leaderboard" in p.stdout, p.stdout + p.stderr
    assert (p.returncode == 0) == ok
    assert ("9 of 9 within tolerance" in p.stdout) == ok


@pytest.fixture(scope="session")
def kit():
    run_py("scripts.make_tiny_kit", "--runs", KIT.parent)  # skipped when the chain already built it
    return KIT


@pytest.mark.chain
def test_the_qwen_kit_has_qwen25s_tokenizer_layout_and_chat_template(kit):
    for name, eos in (("qwen-base", "<|endoftext|>"), ("qwen-instruct", "<|im_end|>")):
        tok = json.loads((kit / name / "tokenizer_config.json").read_text())
        assert (tok["eos_token"], tok["pad_token"], tok.get("bos_token")) == (eos, "<|endoftext|>", None)
        cfg = json.loads((kit / name / "config.json").read_text())
        assert cfg["model_type"] == "qwen2" and cfg["hidden_size"] // cfg["num_attention_heads"] == 32
    gen = json.loads((kit / "qwen-instruct" / "generation_config.json").read_text())
    assert len(gen["eos_token_id"]) == 2
    res = tool("eval", "check_model.py", kit / "qwen-instruct", "--force-eot-at", "2", "--eot", "<|im_end|>")
    assert res["stopped_at_eot"], res


@pytest.mark.chain
def test_a_recipe_ported_to_the_tiny_qwen_kit_passes_check_recipes(kit, tmp_path):
    out = tmp_path / "aloe-qwen-port"
    p = run_py(
        "scripts.drivers.new_recipe",
        "--from",
        "recipes/aloe-beta-8b",
        "--base",
        kit / "qwen-base",
        "--instruct",
        kit / "qwen-instruct",
        "--name",
        out,
        "--sft-gpus",
        "16",
        "--sft-nodes",
        "4",
    )
    review = [line for line in p.stdout.splitlines() if "| learning_rate " in line]
    assert review and "2e-05" in review[0], p.stdout  # the source's published lr, to review for the new base
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    sft = yaml.safe_load((out / "sft.yaml").read_text())
    assert "released_as" not in recipe and recipe["hardware"]["sft"] == {"gpus": 16, "nodes": 4}
    assert (sft["chat_template"], sft["eot_tokens"], sft["gradient_accumulation_steps"]) == (
        "qwen_25",
        ["<|im_end|>"],
        8,
    )
    assert sft["datasets"][0]["roles"] == {
        "user": ["user"],
        "assistant": ["assistant"],
        "system": ["system"],
        "tool": ["tool"],
    }
    assert json.loads((out / "base_config.json").read_text())["model_type"] == "qwen2"
    assert yaml.safe_load((out / "merge.yaml").read_text())["models"][1]["model"] == str(kit / "qwen-instruct")
    c = check(f"RECIPE={out}")
    assert c.returncode == 0, c.stdout + c.stderr
    assert "aloe-qwen-port | sft        | " + str(kit / "qwen-base") in c.stdout


@pytest.mark.chain
def test_a_port_to_hardware_that_cannot_reach_the_total_batch_is_refused(kit, tmp_path):
    p = run_py(
        "scripts.drivers.new_recipe",
        "--base",
        kit / "qwen-base",
        "--instruct",
        kit / "qwen-instruct",
        "--name",
        tmp_path / "bad",
        "--sft-gpus",
        "48",
        check=False,
    )
    assert p.returncode != 0 and "a total batch of 128 cannot be reached on 48 GPUs" in p.stderr
    assert not (tmp_path / "bad").exists()


@pytest.fixture(scope="session")
def qwen_chain(kit):
    """The Qwen-7B recipe's smoke chain, once per session, beside the 8B one (same kit), run as `make smoke
    RECIPE=<copy>` on a copy of its folder under another name: a copied recipe runs as it is."""
    copy = KIT.parent / "recipes" / "qwen-7b-mine"  # a fixed place: a later session's chain skips what is done
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(ROOT / "recipes" / "qwen2.5-aloe-beta-7b", copy)
    p = run_py("scripts.drivers.smoke", "--recipe", copy, "--runs", KIT.parent, check=False, timeout=3000)
    assert p.returncode == 0, p.stdout[-6000:] + p.stderr[-6000:]
    return KIT.parent / "qwen-7b-mine-cpu-tiny", p.stdout


@pytest.mark.chain
def test_the_qwen_recipe_runs_its_whole_chain_on_the_qwen_kit_and_ends_with_verify(qwen_chain, kit):
    run, out = qwen_chain
    assert "=== verify" in out and "within tolerance" in out.split("=== verify")[-1]
    assert mf.read(run / "sft")["inputs"]["base_model"]["path"] == str(kit / "qwen-base")
    merged = mf.read(run / "merge")["outputs"]["model"]["path"]
    final = mf.read(run / "dpo")["runs"][-1]["output"]["path"]
    for model in (merged, final):  # the Qwen chat template and <|im_end|> survive every stage
        res = tool("eval", "check_model.py", model, "--force-eot-at", "3", "--eot", "<|im_end|>")
        assert res["stopped_at_eot"] and res["generated_tokens"] == 4, (model, res)
        assert json.loads((Path(model) / "config.json").read_text())["model_type"] == "qwen2"
    assert len(mf.read(run / "dpo")["runs"]) == 6
