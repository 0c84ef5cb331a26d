"""The tiny chain learns what it is shown (profile cpu-tiny-learn, on a small memorisable fixture): SFT's loss
falls by 30% and the SFT model answers a fixture question greedily; DPO's first step has loss ln 2 (policy =
reference), its reward accuracy and margin end above where they started, and the DPO model prefers its pairs'
chosen answers more often than the merge output did. The numbers are read from axolotl's trainer state,
OpenRLHF's progress log and the models themselves."""

import json
import math

import pytest
from conftest import ROOT, run_py, tool

from data_prep.eval_fixtures import DRUGS
from scripts import core
from scripts.lib import manifest as mf
from scripts.lib import recipe as rc

pytestmark = pytest.mark.chain

PROFILE = "cpu-tiny-learn"


def fixture_rows():
    """SFT: which drug treats each of 8 conditions (check_model.py asks the asthma one); DPO: the same
    questions, the right drug chosen over two wrong ones (the merge with Instruct forgets most of it)."""
    conds = list(DRUGS)
    sft = [
        {
            "messages": [
                {"role": "user", "content": f"Which drug treats {c}?"},
                {"role": "assistant", "content": f"{DRUGS[c].capitalize()}."},
            ]
        }
        for c in conds
    ]
    pairs = [
        {
            "prompt": [{"role": "user", "content": f"Which drug treats {c}?"}],
            "chosen": [{"role": "assistant", "content": f"{DRUGS[c].capitalize()}."}],
            "rejected": [{"role": "assistant", "content": f"{DRUGS[conds[(i + k) % len(conds)]].capitalize()}."}],
        }
        for i, c in enumerate(conds)
        for k in (1, 3)
    ]
    return sft, pairs


def write_data_stage(run):
    """The data stage of this run: the fixture in data_prep's output schema, with its manifest."""
    sft, pairs = fixture_rows()
    recipe = {"path": "tests/test_learning.py", "sha256": core.sha256_json([sft, pairs])}
    st = mf.Build(run / "data", "data", recipe, {}, env="base")
    if st.skip():
        return
    with st:
        for name, rows in (("sft", sft), ("pairs", pairs)):
            (st.partial / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        st.publish("sft", st.partial / "sft.jsonl", "sft.jsonl")
        st.publish("dpo_redteam", st.partial / "pairs.jsonl", "pairs.jsonl")  # the profile's one DPO run reads it


@pytest.fixture(scope="module")
def learned(runs):  # a runs root of its own, holding the tiny kit
    run = runs / f"aloe-beta-8b-{PROFILE}"
    write_data_stage(run)
    for stage in ("scripts.sft", "scripts.merge", "scripts.dpo"):
        run_py(stage, "--profile", PROFILE, "--runs", runs)
    return run


def test_sft_loss_falls_by_30_percent_and_the_model_answers_from_the_fixture(learned):
    m = mf.read(learned / "sft")  # losses from axolotl's trainer state (scripts/sft.py)
    sft, x = m["outputs"], m["metrics"]
    assert x["steps"] == rc.load(ROOT / "recipes/aloe-beta-8b", profile=PROFILE).files["sft"]["max_steps"]
    assert x["loss_last"] <= 0.7 * x["loss_first"], x
    res = tool("eval", "check_model.py", sft["model"]["path"])  # asks "Which drug treats asthma?"
    assert res["text"].startswith("Salbutamol."), res


def test_dpo_starts_at_ln2_and_its_accuracy_and_margin_rise(learned):
    m = mf.read(learned / "dpo")["runs"][0]
    assert abs(m["loss_first"] - math.log(2)) < 1e-3, m
    assert m["acc_last"] > m["acc_first"] and m["reward_margin_last"] > m["reward_margin_first"], m


def test_the_dpo_model_prefers_the_chosen_answers_more_often_than_the_merge_output(learned):
    pairs = mf.read(learned / "data")["outputs"]["dpo_redteam"]["path"]
    before = tool("eval", "preference_logps.py", mf.read(learned / "merge")["outputs"]["model"]["path"], pairs)
    after = tool("eval", "preference_logps.py", mf.read(learned / "dpo")["outputs"]["model"]["path"], pairs)
    assert after["pairs"] == 16 and after["prefers_chosen"] > before["prefers_chosen"], (before, after)
