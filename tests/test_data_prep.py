"""data_prep on fixture corpora with planted problems: each is caught at its step and listed with its
reason, no clean sample is lost, malformed records are named, and the DPO chunks are a seeded partition."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from data_prep import clean, dedup, eval_fixtures, fixtures, normalize, outputs
from data_prep.io import read_jsonl
from scripts.lib import venv

TEST_Q = eval_fixtures.rows("medqa_4options")[0]["sent1"]


def jsonl(path):
    return [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def piped(tmp_path_factory):
    d = tmp_path_factory.mktemp("dp")
    for t in ("medqa_4options", "medmcqa"):
        (d / "eval").mkdir(exist_ok=True)
        (d / "eval" / f"{t}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in eval_fixtures.rows(t)))
    planted = fixtures.build(d / "src", TEST_Q)
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "data_prep.pipeline",
            "--work",
            d / "work",
            "--out-dir",
            d / "out",
            "--sources-dir",
            d / "src",
            "--eval-dir",
            d / "eval",
            "--max-reject-rate",  # the corpus plants bad rows in small sources: the rate is tested on its own below
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr
    return d, planted, p.stdout


def rejects(d, step):
    return jsonl(d / "work" / f"{step}.rejects.jsonl")


@pytest.mark.unit
def test_every_planted_problem_is_caught_and_listed_with_its_reason(piped):
    d, planted, _ = piped
    for item in (x for x in planted if "reason" in x):
        rows = rejects(d, item["step"])
        if item["step"] == "normalize":
            hit = [r for r in rows if r["file"].endswith(f"{item['source']}.jsonl") and r["line"] == item["line"]]
        else:
            hit = [r for r in rows if r["id"] == f"{item['source']}:{item['line']}"]
        assert hit, item
        assert item["reason"] in hit[0]["reason"], (item, hit[0]["reason"])
        if "of" in item:
            assert hit[0]["row"]["source"] == item["source"]


@pytest.mark.unit
def test_dirty_rows_are_cleaned_and_malformed_answers_normalized(piped):
    d, _, _ = piped
    final = jsonl(d / "work" / "mix.jsonl")
    text = json.dumps(final)
    assert "https://" not in text and "example.com" not in text
    assert any(m["content"] == "Answer: [B]" for r in final for m in r.get("messages", []))
    report = json.loads((d / "work" / "clean.report.json").read_text())
    assert report["per_source"]["meds_ins"]["changed"]["normalized multiple-choice answer"] == 1


@pytest.mark.unit
def test_no_clean_sample_is_lost(piped):
    d, planted, _ = piped
    normalized = {r["id"] for r in jsonl(d / "work" / "normalize.jsonl")}
    dropped_later = {f"{x['source']}:{x['line']}" for x in planted if "reason" in x and x["step"] != "normalize"}
    kept = {r["id"] for r in jsonl(d / "work" / "mix.jsonl")}
    assert kept == normalized - dropped_later
    for step in ("normalize", "clean", "dedup", "decontaminate", "prune", "template", "mix"):
        rep = json.loads((d / "work" / f"{step}.report.json").read_text())
        assert rep["in"] == rep["out"] + rep["dropped"] == rep["out"] + len(rejects(d, step)), step


@pytest.mark.unit
def test_shares_and_outputs(piped):
    d, _, stdout = piped
    blocks = json.loads((d / "work" / "mix.report.json").read_text())["blocks"]
    assert {b: round(v["share"], 2) for b, v in blocks.items()} == {
        "medical": 0.6,
        "synthetic_cot": 0.2,
        "general": 0.2,
    }
    sft = jsonl(d / "out" / "sft.jsonl")
    assert sft and all(set(r) == {"messages"} for r in sft)
    assert len(sft) == 50 and sum(len(r["messages"]) > 2 for r in sft) == 10  # the general block is multi-turn


@pytest.mark.unit
def test_dpo_chunks_are_an_equal_seeded_partition(piped, tmp_path):
    d, _, _ = piped
    chunks = [jsonl(d / "out" / "dpo" / f"chunk_{i}.jsonl") for i in range(5)]
    sizes = [len(c) for c in chunks]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == 80
    keys = [json.dumps(r, sort_keys=True) for c in chunks for r in c]
    assert len(set(keys)) == len(keys)  # disjoint (the planted duplicate pair was removed)
    assert outputs.chunk_of(251956, 5, 0).count(0) in (50391, 50392)
    again = outputs.run(d / "work" / "mix.jsonl", tmp_path / "again", 5, 0)
    assert again["dpo_chunks"] == sizes
    assert [jsonl(tmp_path / "again" / "dpo" / f"chunk_{i}.jsonl") for i in range(5)] == chunks
    outputs.run(d / "work" / "mix.jsonl", tmp_path / "other", 5, 1)
    assert jsonl(tmp_path / "other" / "dpo" / "chunk_0.jsonl") != chunks[0]


@pytest.mark.unit
def test_malformed_records_name_file_and_line(piped):
    d, _, _ = piped
    rows = rejects(d, "normalize")
    broken = [r for r in rows if r["reason"] == "malformed JSON"]
    assert broken and broken[0]["file"].endswith("meds_ins.jsonl") and broken[0]["line"] > 0


@pytest.mark.unit
def test_a_near_copy_shares_a_band_and_an_unrelated_text_none():
    text = " ".join(f"w{i}" for i in range(200))
    texts = [text, text.replace("w199", "x199"), " ".join(f"v{i}" for i in range(200))]
    keys = dedup.band_keys(dedup.minhash(*dedup.shingles(*dedup.words(texts)), dedup.BANDS * dedup.ROWS))
    assert (keys[0] == keys[1]).any() and not (keys[0] == keys[2]).any()


@pytest.mark.unit
def test_clean_text_and_answers():
    assert clean.clean_text("see https://a.b/c?d=1  and x@y.org\n\n\n\nok") == "see and\n\nok"
    assert clean.normalize_mc_answer("Explanation: Ans. b") == "Answer: [B]"
    assert clean.normalize_mc_answer("Answer: [B]") is None
    assert clean.normalize_mc_answer("B is the best because") is None


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """The upstream source set through the whole pipeline, read from a mirror laid out like the hub."""
    d = tmp_path_factory.mktemp("up")
    env = {"PYTHONPATH": str(ROOT)}
    assert (
        venv.run(
            "data", ["python", "-m", "data_prep.fixtures", "--hub-dir", d / "hub"], extra_env=env, capture=True
        ).returncode
        == 0
    )
    p = venv.run(
        "data",
        [
            "python",
            "-m",
            "data_prep.pipeline",
            "--work",
            d / "work",
            "--out-dir",
            d / "out",
            "--sources",
            "upstream",
            "--hub-dir",
            d / "hub",
            "--eval-dir",
            d,
        ],
        extra_env=env,
        capture=True,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return d


@pytest.mark.chain
def test_upstream_sources_convert_through_the_hub_loader(upstream):
    report = json.loads((upstream / "work" / "normalize.report.json").read_text())["per_source"]
    # one UltraMedical file feeds three entries, each its own id prefix: 6 rows each, not 18
    assert [report[f"ultramedical_{s}"]["out"] for s in ("textbookqa", "medical_instruct", "wikiinstruct")] == [6, 6, 6]
    assert all(v["dropped"] == {} for v in report.values()), report
    rows = jsonl(upstream / "work" / "normalize.jsonl")
    by = {}
    for r in rows:
        by.setdefault(r["source"], []).append(r)
    users = [m["content"] for r in rows for m in r.get("messages", []) if m["role"] == "user"]
    assert not any("<noinput>" in u or "<HUMAN>" in u for u in users)
    cod = by["cod_patient_sym_disease"][0]["messages"]
    assert [m["role"] for m in cod] == ["user", "assistant"] and "## Diagnosis:" in cod[1]["content"]
    assert len(by["cod_patient_sym_disease"]) == 6  # the `en` config only, of a repo with two
    mental = by["mental_health_conversational"][0]["messages"]
    assert [m["role"] for m in mental] == ["user", "assistant"] and "<ASSISTANT>" not in mental[1]["content"]


@pytest.mark.chain
def test_templates_are_prepended_where_a_source_has_no_prompt(upstream):
    before = {r["id"]: r for r in jsonl(upstream / "work" / "prune.jsonl")}
    after = [r for r in jsonl(upstream / "work" / "template.jsonl") if "messages" in r]
    needs = [r for r in after if r.get("needs_prompt")]
    assert {r["source"] for r in needs} >= {"medquad", "medtext", "liveqa", "mts_dialog"}
    for r in after:
        user, old = r["messages"][0]["content"], before[r["id"]]["messages"][0]["content"]
        assert (user != old and old in user) if r.get("needs_prompt") else user == old, r["id"]
    report = json.loads((upstream / "work" / "template.report.json").read_text())["per_source"]
    assert sum(v["changed"].get("instruction template prepended", 0) for v in report.values()) == len(needs)


def normalize_main(src, tmp_path, *extra):
    return normalize.main(
        ["--sources-dir", str(src), "--out", str(tmp_path / "n.jsonl"), "--rejects", str(tmp_path / "r.jsonl"),
         "--report", str(tmp_path / "r.json"), *extra]
    )  # fmt: skip


@pytest.mark.unit
def test_a_source_that_loses_more_than_the_reject_rate_stops_the_step_with_a_table(tmp_path):
    fixtures.build(tmp_path / "src", TEST_Q)
    with pytest.raises(SystemExit) as e:
        normalize_main(tmp_path / "src", tmp_path)
    lost = json.loads((tmp_path / "r.json").read_text())["lost_sources"]
    # meds_ins 5 of 20, ultramedical 1 of 11, the one-row source 1 of 1; aloe_beta_dpo's 1 of 82 (1.2%) is allowed
    assert set(lost) == {"meds_ins", "ultramedical", "medqa_cot_llama31"}
    assert (lost["meds_ins"]["in"], lost["meds_ins"]["out"], lost["meds_ins"]["rate"]) == (20, 15, 0.25)
    msg = str(e.value)
    assert "lost more than 2.0% of their rows" in msg and "meds_ins" in msg and "aloe_beta_dpo" not in msg
    assert f"{tmp_path / 'src' / 'meds_ins.jsonl'}:12" in msg  # the first malformed row, by file and line
    assert len(jsonl(tmp_path / "r.jsonl")) == 8  # every reject is kept, whatever the verdict
    normalize_main(tmp_path / "src", tmp_path, "--max-reject-rate", "1")  # allowed to lose them all: passes


@pytest.mark.chain
def test_a_source_that_cannot_be_read_is_named_and_the_others_kept(tmp_path):
    hub = tmp_path / "hub"
    env = {"PYTHONPATH": str(ROOT)}
    assert (
        venv.run(
            "data", ["python", "-m", "data_prep.fixtures", "--hub-dir", hub], extra_env=env, capture=True
        ).returncode
        == 0
    )
    (hub / "HPAI-BSC/ultramedical/ultramedical.json").write_text('[{"conversations": [')  # cut off mid-file
    shutil.rmtree(hub / "HPAI-BSC/Polymed-QA")  # a repo that is gone
    p = venv.run(
        "data",
        [
            "python",
            "-m",
            "data_prep.normalize",
            "--hub-dir",
            hub,
            "--out",
            tmp_path / "n.jsonl",
            "--rejects",
            tmp_path / "r.jsonl",
            "--report",
            tmp_path / "r.json",
        ],
        extra_env=env,
        capture=True,
    )
    assert p.returncode == 1 and "polymed_qa: HPAI-BSC/Polymed-QA: FileNotFoundError" in p.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert list(report["failed_sources"]) == ["polymed_qa"]
    # the cut-off file: its one unreadable element is a reject named by file and line, and the source is lost
    assert list(report["lost_sources"]) == ["ultramedical"] and "ultramedical.json:1" in p.stderr
    assert report["read_from"]["meds_ins"]["data_files"] == [str(hub / "HPAI-BSC/MedS-Ins/MedS-Ins.json")]
    kept = {r["source"] for r in jsonl(tmp_path / "n.jsonl")}
    assert "meds_ins" in kept and "aloe_beta_dpo" in kept and len(kept) == len(normalize.registry()) - 2


@pytest.mark.parametrize(
    "raw, expect",
    [
        (b'\xef\xbb\xbf{"a": 1}\n{"a": 2}\n', [(1, {"a": 1}, None), (2, {"a": 2}, None)]),  # BOM
        ('{"a": 1}\n{"a": 2}\n'.encode("utf-16"), [(1, {"a": 1}, None), (2, {"a": 2}, None)]),  # UTF-16
        (
            b'{"a": 1}\n{"a": "\xff"}\n{"a": 3}\n',
            [(1, {"a": 1}, None), (2, None, "invalid UTF-8"), (3, {"a": 3}, None)],
        ),
        (b'[\n {"a": 1},\n {"a": 2}\n]\n', [(2, {"a": 1}, None), (3, {"a": 2}, None)]),  # JSON array
        (b'[\n {"a": 1},\n {"a": \n', [(2, {"a": 1}, None), (3, None, "malformed JSON array")]),
        (b"a,b\n1,2\n", [(1, None, "malformed JSON"), (2, None, "malformed JSON")]),  # CSV
        (b'[1, 2]\n"x"\n', [(1, None, "wrong type: a JSON int"), (1, None, "wrong type: a JSON int")]),
    ],
)
@pytest.mark.unit
def test_every_kind_of_broken_file_is_read_or_rejected_by_line(tmp_path, raw, expect):
    f = tmp_path / "x.jsonl"
    f.write_bytes(raw)
    got = list(read_jsonl(f))
    assert [(n, row) for n, row, _ in got] == [(n, row) for n, row, _ in expect]
    assert all(
        (err or "").startswith(want or "") and (err is None) == (want is None)
        for (_, _, err), (_, _, want) in zip(got, expect)
    )


@pytest.mark.unit
def test_converters_for_the_real_layouts():
    rnd = __import__("random").Random(1)
    alpaca = normalize.convert({"instruction": "Q", "input": "<noinput>", "output": "A"}, "alpaca")
    assert alpaca["messages"][0]["content"] == "Q"
    assert (
        normalize.convert(
            {"body": "Q?", "ideal_answer": ["A.", "B."]}, "qa", {"question": "body", "answer": "ideal_answer"}
        )["messages"][1]["content"]
        == "A."
    )
    tagged = normalize.convert(
        {"text": "<HUMAN>: hi\n<ASSISTANT>: hello\n<HUMAN>: more\n<ASSISTANT>: ok"}, "tagged_text"
    )["messages"]
    assert [(m["role"], m["content"]) for m in tagged] == [
        ("user", "hi"),
        ("assistant", "hello"),
        ("user", "more"),
        ("assistant", "ok"),
    ]
    for bad, fmt, reason in [
        ({"text": "no tags"}, "tagged_text", "not '<HUMAN>"),
        ({"CoD_conversations": "[{"}, "cod", "malformed JSON in 'CoD_conversations'"),
        (fixtures.cot_row(rnd, "E"), "mcqa_cot", "answer E is not among the options A, B, C, D"),
        (
            {"question": "Q", "options": ["x", "y"], "response": "Answer: [C]"},
            "mcqa_cot",
            "answer C is not among the options A, B",
        ),
        ({"prompt": "p", "chosen": "same", "rejected": "same"}, "preference", "chosen and rejected"),
    ]:
        with pytest.raises(normalize.Malformed, match=reason.replace("[", "\\[").replace("(", "\\(")):
            normalize.convert(bad, fmt)
    assert normalize.convert(fixtures.cot_row(rnd, "D"), "mcqa_cot")["messages"][1]["content"].endswith("Answer: D.")
