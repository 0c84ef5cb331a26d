"""Memory-bounded reading (issue 24): io.read_jsonl reads a JSON-array file chunk by chunk, with the rows, lines and
errors of a whole-file read; data_prep.hub reads a mirror's JSON files that way, with the rows `datasets` gives."""

import json
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT

from data_prep import hub
from data_prep.io import CHUNK, read_jsonl
from scripts.lib import venv

pytestmark = pytest.mark.unit

HPAI = "HPAI-BSC/"
EXPORTED = {
    "MedS-Ins",
    "ultramedical",
    "Aloe-Beta-Medical-Collection",
    "Polymed-QA",
    "Aloe-Beta-DPO",
    "chain-of-diagnosis",
}


def array(path, values, encoding="utf-8", **dumps):
    """Write values as one JSON array (json.dumps options: indented, not escaped), one element after another; the
    line each element starts on."""
    parts, lines, line = ["[\n"], [], 2
    for i, v in enumerate(values):
        text = json.dumps(v, **{"indent": 1, "ensure_ascii": False, **dumps}) + (",\n" if i < len(values) - 1 else "\n")
        parts.append(text)
        lines.append(line)
        line += text.count("\n")
    parts.append("]\n")
    path.write_bytes("".join(parts).encode(encoding))
    return lines


def row(i, words=60):
    text = " ".join(f"fièvre-{i}-{k} 漢字 😀" for k in range(words))
    return {"i": i, "conversations": [{"from": "human", "value": text}, {"from": "gpt", "value": text[::-1]}]}


READ = """
import json, sys
from data_prep.io import read_jsonl
def peak():  # this process's own peak RSS (ru_maxrss would count the parent's at the fork)
    return int(next(x for x in open("/proc/self/status") if x.startswith("VmHWM:")).split()[1]) * 1024
base, n, lines, errors = peak(), 0, {}, 0
for line, row, err in read_jsonl(sys.argv[1]):
    n, errors = n + 1, errors + (err is not None)
    if row and str(row["i"]) in sys.argv[2:]:
        lines[row["i"]] = line
print(json.dumps({"rows": n, "errors": errors, "lines": lines, "grew": peak() - base}))
"""


def test_a_large_json_array_is_read_with_memory_far_below_its_size(tmp_path):
    f, n = tmp_path / "big.json", 13_000
    lines = array(f, [row(i) for i in range(n)])
    size = f.stat().st_size
    assert size > 40e6
    picked = [0, 1, 4321, n - 1]
    p = subprocess.run(
        [sys.executable, "-c", READ, f, *map(str, picked)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(p.stdout)
    assert (got["rows"], got["errors"]) == (n, 0)
    assert got["lines"] == {str(i): lines[i] for i in picked}
    # the whole-file reader held every line and their join (checked once on this file: +295 MB; this one: +3 MB)
    assert got["grew"] < size / 4, f"peak RSS grew by {got['grew'] / 1e6:.0f} MB reading {size / 1e6:.0f} MB"


VALUES = [
    {"a": 1, "t": 'é漢😀 \\ " \\ud83d\\ude00'},  # escapes (a backslash, a quote), cut by the chunks too
    12345,  # a number is not an object: one error, however the chunks cut it
    {"big": "x" * 20_000, "n": [1.5e3, -2, None, True, False]},  # larger than any chunk below
    "text",
    {"z": {"nested": [[{}], []]}, "u": "\U0001f600", "e": "\u00e9"},  # ASCII-escaped: a surrogate pair
]


def expected(lines):
    return [(n, v, None) if isinstance(v, dict) else (n, None, "wrong type") for n, v in zip(lines, VALUES)]


def same(got, want):
    return [(n, r) for n, r, _ in got] == [(n, r) for n, r, _ in want] and all(
        (e is None) == (w is None) and (e or "").startswith(w or "") for (_, _, e), (_, _, w) in zip(got, want)
    )


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, CHUNK])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])
def test_elements_cut_by_chunks_and_larger_than_a_chunk_read_the_same_in_every_encoding(tmp_path, chunk, encoding):
    f = tmp_path / "x.json"
    for dumps in ({}, {"indent": None, "ensure_ascii": True}):
        lines = array(f, VALUES, encoding, **dumps)
        if encoding in ("utf-16-le", "utf-16-be"):  # with their byte-order mark, as read_jsonl requires of UTF-16
            f.write_bytes(("\ufeff" + f.read_bytes().decode(encoding)).encode(encoding))
        assert same(list(read_jsonl(f, chunk=chunk)), expected(lines)), dumps


@pytest.mark.parametrize("chunk", [1, 5, CHUNK])
def test_a_broken_array_yields_the_rows_before_the_break_then_one_error_at_its_line(tmp_path, chunk):
    f = tmp_path / "x.json"
    lines = array(f, VALUES)
    raw = f.read_bytes()
    cut = raw.index(b'"text"')  # on the line of the fourth element
    f.write_bytes(raw[:cut] + b'"te\xffxt"' + raw[cut + 6 :])
    got = list(read_jsonl(f, chunk=chunk))
    assert same(got, [*expected(lines)[:3], (lines[3], None, "invalid UTF-8 (byte 0xff)")])
    f.write_bytes(raw[:cut] + b"{tru" + raw[cut + 6 :])
    got = list(read_jsonl(f, chunk=chunk))
    assert same(got, [*expected(lines)[:3], (lines[3], None, "malformed JSON array (Expecting property name")])
    assert got[-1][2].endswith("the rest of the file is unread")
    cut = raw.rindex(b"]")
    f.write_bytes(raw[:cut])  # cut off where an element ends: rows are not lost silently
    end = (raw[:cut].count(b"\n") + 1, None, "malformed JSON array (the file ends before its closing bracket)")
    assert same(list(read_jsonl(f, chunk=chunk)), [*expected(lines), end])


def test_only_the_evidenced_hpai_copies_are_read_from_the_parquet_export(tmp_path):
    entries = [e for block in yaml.safe_load((ROOT / "data_prep/sources.yaml").read_text()).values() for e in block]
    exported = {e["hub"] for e in entries if e.get("parquet_export")}
    assert exported == {HPAI + name for name in EXPORTED}
    meds = next(e for e in entries if e["hub"] == HPAI + "MedS-Ins")
    export = {"revision": "refs/convert/parquet", "data_files": {"train": "default/train/*.parquet"}}
    assert hub.load_args(meds) == (HPAI + "MedS-Ins", None, export)
    (tmp_path / meds["hub"]).mkdir(parents=True)
    assert hub.load_args(meds, tmp_path) == (str(tmp_path / meds["hub"]), None, {})  # a mirror: the repo's own files
    with pytest.raises(FileNotFoundError, match=rf"dataset HPAI-BSC/Polymed-QA not found \(no folder {tmp_path}/HPAI"):
        hub.rows(next(e for e in entries if e["hub"] == HPAI + "Polymed-QA"), tmp_path)


MIRROR = """
import json, sys
from pathlib import Path
import datasets
from data_prep import fixtures, hub, normalize
d = fixtures.build_hub(Path(sys.argv[1]))
opened = []
sys.addaudithook(lambda ev, args: ev == "open" and str(args[0]).startswith(sys.argv[1]) and opened.append(str(args[0])))
out = {}
for e in [e for v in normalize.VARIANTS for e in normalize.registry(variant=v) if e["name"] in sys.argv[2:]]:
    del opened[:]
    where = hub.where(e, d)
    out[e["name"]] = {"where": where, "opened_by_where": list(opened)}
    got = list(hub.rows(e, d))
    ref = list(datasets.load_dataset(str(d / e["hub"]), e.get("config"), split=e["split"], streaming=True))
    out[e["name"]].update(same=[r for _, _, r, _ in got] == ref, at=[(f, n, err) for f, n, _, err in got])
print(json.dumps(out))
"""


def test_a_mirrors_json_files_give_the_rows_datasets_gives_with_their_files_and_lines(tmp_path):
    names = ["ultramedical", "aloe_beta_dpo", "egida_dpo_qwen25_7b", "medinstruct_52k"]
    p = venv.run("data", ["python", "-c", MIRROR, tmp_path, *names], extra_env={"PYTHONPATH": str(ROOT)}, capture=True)
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert all(got[n]["same"] for n in names), {n: got[n]["same"] for n in names}
    dpo = [f"aloe_beta_chunk_{i}.json" for i in range(5)]
    for name, repo, files in [
        ("ultramedical", "ultramedical", ["ultramedical.json"]),
        ("aloe_beta_dpo", "Aloe-Beta-DPO", dpo),
    ]:
        g, repo = got[name], tmp_path / HPAI / repo
        assert g["where"]["data_files"] == [str(repo / f) for f in files]
        assert all(f.endswith("README.md") for f in g["opened_by_where"])  # resolving the files reads no data
        assert list(dict.fromkeys(f for f, _, _ in g["at"])) == [str(repo / f) for f in files]  # in order
        for f in files:
            at = [[n, err] for name, n, err in g["at"] if name == str(repo / f)]
            assert at[0] == [2, None] and all(b[0] > a[0] for a, b in zip(at, at[1:])), at  # every element's line
    egida = got["egida_dpo_qwen25_7b"]["where"]
    assert (egida["config"], egida["data_files"]) == (
        "Egida-DPO-Qwen2.5-7B-Instruct",
        [str(tmp_path / "HPAI-BSC/Egida/Egida-DPO-Qwen2.5-7B-Instruct.json")],
    )
    parquet = got["medinstruct_52k"]["at"]  # another format: through datasets, named by the repo and row number
    assert parquet[:2] == [["lavita/AlpaCare-MedInstruct-52k", 1, None], ["lavita/AlpaCare-MedInstruct-52k", 2, None]]
