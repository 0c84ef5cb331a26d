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
