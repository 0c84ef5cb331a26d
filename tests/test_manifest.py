"""The manifest schema is checked when a stage reads it: another schema version or a missing key stops the
next stage with a message naming the file and the key; one process at a time builds a stage folder."""

import json
import threading

import pytest

from scripts import core
from scripts.core import AloeError
from scripts.lib import manifest as mf

pytestmark = pytest.mark.unit


def manifest(tmp_path, **change):
    m = {k: None for k in mf.Manifest.__annotations__} | {"schema": mf.SCHEMA, "status": "done"} | change
    (tmp_path / "manifest.json").write_text(json.dumps({k: v for k, v in m.items() if v != "DROP"}))
    return tmp_path


def test_a_complete_manifest_is_read(tmp_path):
    assert mf.read_done(manifest(tmp_path), "merge")["schema"] == mf.SCHEMA


def test_a_missing_key_is_named_with_the_file(tmp_path):
    (tmp_path / "sft").mkdir()
    with pytest.raises(mf.ManifestError, match=r"sft/manifest.json: missing key\(s\) outputs"):
        mf.read_done(manifest(tmp_path / "sft", outputs="DROP"), "merge")


def test_another_schema_version_is_refused(tmp_path):
    with pytest.raises(mf.ManifestError, match="schema 'aloe-repro/manifest@1'"):
        mf.read_done(manifest(tmp_path, schema="aloe-repro/manifest@1"), "merge")


def test_a_running_stage_is_not_read(tmp_path):
    with pytest.raises(AloeError, match="is running; run that stage first"):
        mf.read_done(manifest(tmp_path, status="running"), "merge")


def test_a_second_builder_of_a_stage_folder_waits_for_the_first(tmp_path, capsys):
    order, lock = [], tmp_path / "sft" / ".lock"
    with core.locked(lock):
        t = threading.Thread(target=_take, args=(lock, order))
        t.start()
        t.join(0.5)
        assert t.is_alive() and order == []  # blocked while the first holds the folder
        order.append("first")
    t.join(5)
    assert order == ["first", "second"] and "waiting" in capsys.readouterr().out


def _take(lock, order):
    with core.locked(lock, "waiting"):
        order.append("second")


def test_a_resumed_build_records_each_earlier_attempt_and_a_changed_one_starts_clean(tmp_path):
    def build(**numbers):
        return mf.Build(tmp_path / "sft", "sft", {"sha256": "r"}, {}, resumable=True, env="sft", **numbers)

    with pytest.raises(RuntimeError), build(seed=1) as b:  # a first attempt that fails...
        (b.partial / "model").mkdir()
        (b.partial / "model" / "checkpoint-2").mkdir()
        raise RuntimeError
    first = mf.read(tmp_path / "sft" / ".partial")
    killed = build(seed=1).__enter__()  # ...a second that is killed (its record stays "running")...
    assert killed.m["attempts"] == [{"started": first["started"], "status": "failed", "wall_s": first["wall_s"]}]
    with build(seed=1) as b:  # ...and a third that resumes from what both left and finishes
        assert (b.partial / "model" / "checkpoint-2").is_dir()
    done = mf.read(tmp_path / "sft")
    assert [a["status"] for a in done["attempts"]] == ["failed", "running"] and done["attempts"][1]["wall_s"] >= 0
    with pytest.raises(RuntimeError), build(seed=1) as b:
        (b.partial / "checkpoint-8").mkdir()
        raise RuntimeError
    with build(seed=2) as b:  # other settings: nothing of the old attempt is resumed
        assert not (b.partial / "checkpoint-8").exists() and "attempts" not in b.m


@pytest.mark.parametrize("relayout", [True, False])
def test_only_a_relayout_stage_takes_what_another_layout_of_the_same_total_batch_made(tmp_path, relayout):
    def build(world, total=4, **kw):
        numbers = {"world_size": world, "micro_batch": 1, "grad_accum": total // world, "total_batch": total}
        return mf.Build(tmp_path / "dpo-run", "dpo-run", {"sha256": "r"}, {}, resumable=True, env="dpo",
                        relayout=relayout, **numbers, **kw)  # fmt: skip

    with pytest.raises(RuntimeError), build(2) as b:  # preempted on 2 ranks
        (b.partial / "ckpt").mkdir()
        raise RuntimeError
    with build(1) as b:  # resumed on 1 (DPO) or started clean (any other stage)
        assert (b.partial / "ckpt").is_dir() == relayout
        assert [a.get("world_size") for a in b.m.get("attempts", [])] == ([2] if relayout else [])
        (b.partial / "model").mkdir()
        b.publish("model", b.partial / "model")
    assert build(2).done == relayout  # finished on 1 rank: kept on 2 only where the stage can relayout
    assert not build(2, total=8).done  # another total batch is another run
    assert not build(1, seed=5).done  # as is any other setting


def test_the_newest_complete_checkpoint_is_resumed_and_one_cut_off_while_written_is_not(tmp_path):
    from scripts import sft

    assert sft.newest_checkpoint(tmp_path) is None
    for step, complete in ((2, True), (4, True), (6, False), (10, True)):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "model.safetensors").write_text("w")
        if complete:  # the trainer writes trainer_state.json last
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert sft.newest_checkpoint(tmp_path).name == "checkpoint-10"  # by step, not by name (10 < 4 as text)
    (tmp_path / "checkpoint-10" / "trainer_state.json").unlink()
    assert sft.newest_checkpoint(tmp_path).name == "checkpoint-4"
