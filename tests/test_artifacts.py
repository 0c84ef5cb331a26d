"""A stage's output is its artifact only: two identical SFT runs give one output hash (checkpoints and
logs live beside it, in sft/train, and no hash covers them), and the merge after them is skipped."""

from conftest import run_py

from scripts.lib import manifest as mf


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
