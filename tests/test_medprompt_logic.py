"""Medprompt's pure logic: permutations map back, the parser reads what models write, the vote and the
adaptive stopping rule are right, including ties and unparsed members."""

import itertools
import random

import pytest

from medprompt.parse import parse_answer
from medprompt.shuffle import LETTERS, permutations, shown, to_original
from medprompt.vote import majority, settled

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("trial", range(200))
def test_every_member_gets_a_distinct_permutation_and_letters_map_back(trial):
    rnd = random.Random(trial)
    n_opt, n_mem = rnd.choice([3, 4, 5]), rnd.randint(1, 20)
    perms = permutations(n_opt, n_mem, seed=rnd.randint(0, 9), qid=str(trial))
    distinct = min(n_mem, len(list(itertools.permutations(range(n_opt)))))
    assert len(set(perms[:distinct])) == distinct
    options = [f"opt{i}" for i in range(n_opt)]
    for perm in perms:
        view = shown(options, perm)
        for shown_idx, text in enumerate(view):  # picking what the member saw at a letter = that option
            original = to_original(LETTERS[shown_idx], perm)
            assert options[LETTERS.index(original)] == text
    assert to_original(None, perms[0]) is None


def test_permutations_are_reproducible_per_question():
    assert permutations(4, 20, 42, "q1") == permutations(4, 20, 42, "q1")
    assert permutations(4, 20, 42, "q1") != permutations(4, 20, 42, "q2")
    assert permutations(4, 3, 42, "q1", shuffle=False) == [(0, 1, 2, 3)] * 3


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Let's think. Option B is wrong.\nAnswer: [B]", "B"),
        ("Answer: B", "B"),
        ("so the answer is (b)", "B"),
        ("Answer: [C] because the drug blocks the channel. A and D are wrong.", "C"),
        ("A is wrong, B is wrong.\nAnswer: [A] or maybe [D]", "D"),
        ("Answer: [B]\n... on reflection\nAnswer: [D]", "D"),
        ("The correct option is D.", "D"),
        ("Answer: [E]", None),  # not one of 4 options
        ("I am not sure.", None),
        ("", None),
    ],
)
def test_parser(text, expected):
    assert parse_answer(text, 4) == expected


def test_vote_majority_ties_and_unparsed():
    assert majority(["A", "B", "A", None]).answer == "A"
    v = majority(["B", "A", "A", "B", None])
    assert (v.answer, v.draw, v.voters) == ("B", True, 4)  # tie: B voted first
    assert majority([None, None]).answer is None
    assert majority([None, "C"]).answer == "C"


def test_settled_only_when_the_remaining_votes_cannot_change_the_winner():
    assert settled(["A", "A", "A"], 2)  # 3 vs at most 2
    assert settled(["A", "A", "B"], 1)  # B can only tie 2-2, and A voted first
    assert not settled(["A", "A", "B"], 2)  # B could win 3-2
    assert not settled(["B", "A", "A"], 1)  # B ties 2-2 and wins (first vote)
    assert not settled([None, None], 3)
    assert settled(["A", "A"], 2)  # an unvoted rival tying 2-2 votes later than A


@pytest.mark.parametrize("seed", range(300))
def test_stopping_when_settled_never_changes_the_full_vote(seed):
    rnd = random.Random(seed)
    n = rnd.randint(1, 20)
    votes = [rnd.choice(["A", "B", "C", None]) for _ in range(n)]
    for m in range(n + 1):
        if settled(votes[:m], n - m):
            assert majority(votes[:m]).answer == majority(votes).answer


class CountingEmbedder:
    """Deterministic unit vectors per text; counts the texts it was asked to embed."""

    def __init__(self):
        self.embedded = []

    def encode(self, texts):
        import numpy as np

        self.embedded.append(len(texts))
        v = np.array([[(hash(t) >> s) % 97 + 1 for s in range(0, 32, 4)] for t in texts], dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_a_database_is_embedded_once_for_every_run_that_shares_the_cache(tmp_path):
    import json

    from data_prep import eval_fixtures
    from medprompt.run import Run

    db = eval_fixtures.cot_database()
    for name, rows in (("q.jsonl", eval_fixtures.rows("medqa_4options")), ("db.jsonl", db), ("db2.jsonl", db[:-1])):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    emb = CountingEmbedder()

    def prepare(out, database="db.jsonl"):
        cfg = {"dataset": "medqa_4options", "data_path": str(tmp_path / "q.jsonl"), "limit": 3, "k": 2, "seed": 0,
               "database": str(tmp_path / database), "embedding_model": "counting", "ensembles": 2,
               "choice_shuffle": True, "out": str(tmp_path / out), "cache_dir": str(tmp_path / "cache")}  # fmt: skip
        run = Run(cfg, embedder=emb)
        run.prepare()
        return run

    first = prepare("a")
    prepare("b")  # another benchmark or a rerun over the same database: its vectors are read, not made again
    assert emb.embedded == [len(db), 3, 3]  # the database once, each run's 3 questions
    prepare("c", "db2.jsonl")  # another database content: embedded
    assert emb.embedded[3:] == [len(db) - 1, 3]
    assert len(list((tmp_path / "cache").glob("database-vectors-*.npy"))) == 2
    assert not list((tmp_path / "a").glob("*.npy"))  # the vectors are no output of a run
    assert all(len(ex) == 2 for ex in first.examples.values())


def test_the_run_times_its_phases_engine_start_apart_from_generation(tmp_path, monkeypatch):
    import json
    import time

    from data_prep import eval_fixtures
    from medprompt import generate
    from medprompt.run import Run

    class Slow:  # starts in 0.3 s, then answers every member "Answer: [A]" in 0.02 s per request
        info = {}

        def stream(self, requests):
            for i, _ in enumerate(requests):
                time.sleep(0.02)
                yield i, generate.Completion("Answer: [A]", 10, 3)

    def make(*args, **kwargs):
        time.sleep(0.3)
        return Slow()

    monkeypatch.setattr(generate, "make", make)
    for name, rows in (("q.jsonl", eval_fixtures.rows("medqa_4options")), ("db.jsonl", eval_fixtures.cot_database())):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = {"dataset": "medqa_4options", "data_path": str(tmp_path / "q.jsonl"), "limit": 4, "k": 2, "seed": 0,
           "database": str(tmp_path / "db.jsonl"), "embedding_model": "counting", "ensembles": 5, "adaptive": False,
           "choice_shuffle": True, "out": str(tmp_path / "out"), "max_tokens": 8, "max_attempts": 2,
           "retry_extra_tokens": 0, "retry_extra_temperature": 0.0, "temperature": 0.0, "backend": "hf",
           "model": "m"}  # fmt: skip
    ph = Run(cfg, embedder=CountingEmbedder())()["phases_s"]
    assert 0.3 <= ph["engine_start_s"] < 0.3 + 0.2  # the start alone, not the 20 requests after it
    assert 20 * 0.02 <= ph["generation_s"] < ph["engine_start_s"] + 20 * 0.02  # the requests, not the start
    assert 0 <= ph["embedding_s"] < 0.3 and 0 <= ph["vote_s"] < 0.3
