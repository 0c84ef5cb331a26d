"""data_prep on fixture corpora with planted problems: each is caught at its step and listed with its
reason, no clean sample is lost, malformed records are named, and the DPO chunks are a seeded partition."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from data_prep import clean, dedup, fixtures, outputs
from scripts.lib import eval_fixtures

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
    p = subprocess.run([sys.executable, "-m", "data_prep.pipeline", "--work", d / "work", "--out-dir", d / "out",
                        "--sources-dir", d / "src", "--eval-dir", d / "eval"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return d, planted, p.stdout


def rejects(d, step):
    return jsonl(d / "work" / f"{step}.rejects.jsonl")


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


def test_dirty_rows_are_cleaned_and_malformed_answers_normalized(piped):
    d, _, _ = piped
    final = jsonl(d / "work" / "mix.jsonl")
    text = json.dumps(final)
    assert "https://" not in text and "example.com" not in text
    assert any(m["content"] == "Answer: [B]" for r in final for m in r.get("messages", []))
    report = json.loads((d / "work" / "clean.report.json").read_text())
    assert report["per_source"]["meds_ins"]["changed"]["normalized multiple-choice answer"] == 1


def test_no_clean_sample_is_lost(piped):
    d, planted, _ = piped
    normalized = {r["id"] for r in jsonl(d / "work" / "normalize.jsonl")}
    dropped_later = {f"{x['source']}:{x['line']}" for x in planted if "reason" in x and x["step"] != "normalize"}
    kept = {r["id"] for r in jsonl(d / "work" / "mix.jsonl")}
    assert kept == normalized - dropped_later
    for step in ("normalize", "clean", "dedup", "decontaminate", "prune", "template", "mix"):
        rep = json.loads((d / "work" / f"{step}.report.json").read_text())
        assert rep["in"] == rep["out"] + rep["dropped"] == rep["out"] + len(rejects(d, step)), step


def test_shares_and_outputs(piped):
    d, _, stdout = piped
    blocks = json.loads((d / "work" / "mix.report.json").read_text())["blocks"]
    assert {b: round(v["share"], 2) for b, v in blocks.items()} == {"medical": 0.6, "synthetic_cot": 0.2, "general": 0.2}
    sft = jsonl(d / "out" / "sft.jsonl")
    assert sft and all(set(r) == {"messages"} for r in sft)
    assert any(m["content"].startswith(("Answer", "Write", "Summarise", "Give", "Provide", "Read", "Analyse",
                                        "What", "As a", "You are", "Explain", "Describe", "Turn", "Document",
                                        "Produce", "Respond", "Reply", "Continue"))
               for r in sft for m in r["messages"] if m["role"] == "user")  # templates were prepended
    assert "normalize" in stdout and "peak RSS MB" in stdout


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


def test_malformed_records_name_file_and_line(piped):
    d, _, _ = piped
    rows = rejects(d, "normalize")
    broken = [r for r in rows if r["reason"] == "malformed JSON"]
    assert broken and broken[0]["file"].endswith("meds_ins.jsonl") and broken[0]["line"] > 0


def test_near_duplicate_threshold_follows_the_band_layout():
    text = " ".join(f"w{i}" for i in range(200))
    sig_a = dedup.signature(text, 8)
    near = dedup.signature(text.replace("w199", "x199"), 8)
    far = dedup.signature(" ".join(f"v{i}" for i in range(200)), 8)
    assert (dedup.band_keys(sig_a, 8) == dedup.band_keys(near, 8)).any()
    assert not (dedup.band_keys(sig_a, 8) == dedup.band_keys(far, 8)).any()
    assert round((1 / dedup.BANDS) ** (1 / dedup.ROWS["qa"]), 2) == 0.72
    assert round((1 / dedup.BANDS) ** (1 / dedup.ROWS["multi_turn"]), 2) == 0.77


def test_clean_text_and_answers():
    assert clean.clean_text("see https://a.b/c?d=1  and x@y.org\n\n\n\nok") == "see and\n\nok"
    assert clean.normalize_mc_answer("Explanation: Ans. b") == "Answer: [B]"
    assert clean.normalize_mc_answer("Answer: [B]") is None
    assert clean.normalize_mc_answer("B is the best because") is None
