"""A stage's output is its artifact only: two identical SFT runs give one output hash (checkpoints and
logs live beside it, in sft/train, and no hash covers them), and the merge after them is skipped; every model
output (SFT, merge, each DPO run) is weights, config, tokenizer and generation config; every output is hashed."""

from pathlib import Path

import pytest
from conftest import run_py

from scripts import core
from scripts.lib import manifest as mf

pytestmark = pytest.mark.chain


def test_two_identical_sft_runs_give_one_hash_and_the_merge_is_skipped(chain):
    runs, run, _ = chain
    before = mf.read(run / "sft")["outputs"]
    assert not list((run / "sft" / "model").glob("checkpoint-*")) and not list((run / "sft" / "model").glob("*.log"))
    run_py("scripts.sft", "--profile", "cpu-tiny", "--runs", runs, "--force")
    after = mf.read(run / "sft")
    assert after["status"] == "done" and after["outputs"]["model"]["sha256"] == before["model"]["sha256"]
    assert (run / "sft" / "train" / "debug.log").exists()  # the trainer's log, kept beside the artifact
    p = run_py("scripts.merge", "--profile", "cpu-tiny", "--runs", runs)
    assert "[merge] skipped: finished with the same inputs" in p.stdout


ARTIFACT = {"config.json", "generation_config.json", "model.safetensors", "chat_template.jinja"}
TOKENIZER = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt"}
CARD = {"README.md", "mergekit_config.yml"}  # the model card the trainer writes, mergekit's record of the merge


def test_every_model_output_holds_the_artifact_only_and_every_output_is_hashed(chain):
    _, run, _ = chain
    for stage in ("sft", "merge", *sorted(p.relative_to(run).as_posix() for p in (run / "dpo").glob("0*"))):
        model = mf.read(run / stage)["outputs"]["model"]["path"]
        names = {p.name for p in Path(model).iterdir()}
        assert ARTIFACT - {"chat_template.jinja"} <= names and names <= ARTIFACT | TOKENIZER | CARD, f"{stage}: {names}"
    for stage in ("data", "sft", "merge", "dpo", "eval-mcqa", "medprompt-medqa_4options"):
        for key, out in mf.read(run / stage)["outputs"].items():
            assert out["sha256"] == core.sha256_path(Path(out["path"])), f"{stage} {key}"
