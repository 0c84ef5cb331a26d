"""Dedup that verifies its candidates (issue 26): a copy edited at scattered places is removed, MCQs sharing only
their stem are kept (their candidate pairs rejected by the true Jaccard), exact copies still go, the report adds up,
and the result does not depend on how the file is split among the workers."""

import json
import random

import numpy as np
import pytest

from data_prep import dedup

pytestmark = pytest.mark.unit

STEM = "Which of the following is the most likely diagnosis? Choose the single best answer from the options below."


def row(n, question, answer):
    msgs = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return {"id": f"t:{n}", "source": "t", "messages": msgs}


def words(rnd, k):
    return [f"w{rnd.randrange(10**6)}" for _ in range(k)]


def run(tmp_path, rows):
    """The step on rows: (report, {id: (reason, duplicate_of)} of the rejects, ids kept)."""
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rep = dedup.run(inp, tmp_path / "out.jsonl", tmp_path / "rej.jsonl", tmp_path / "rep.json")
    rejects = [json.loads(x) for x in (tmp_path / "rej.jsonl").read_text().splitlines()]
    kept = [json.loads(x)["id"] for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    return rep, {r["row"]["id"]: (r["reason"], r["duplicate_of"]) for r in rejects}, kept


def mcqs(rnd, first, n):
    """n MCQs sharing STEM, each with a vignette and options of its own."""
    return [
        row(k, f"{' '.join(words(rnd, 12))} {STEM} A. {rnd.random()} B. {rnd.random()} C. x D. y", "Answer: [B]")
        for k in range(first, first + n)
    ]


def shingle_set(text):
    flat, _ = dedup.shingles(*dedup.words([text]))
    return np.unique(flat)


def test_a_copy_edited_at_scattered_places_is_removed(tmp_path):
    rnd = random.Random(0)
    original = words(rnd, 200)
    copy = [w if i % 12 else "edited" for i, w in enumerate(original)]  # 1 word in 12, spread over the text
    jac = dedup.jaccard(shingle_set(" ".join(original)), shingle_set(" ".join(copy)))
    assert dedup.VERIFY["qa"] <= jac < 0.72  # a near copy the paper's layout (0.72) mostly misses
    others = [row(n, " ".join(words(rnd, 30)), " ".join(words(rnd, 100))) for n in range(2, 8)]
    rows = [
        row(0, " ".join(original[:40]), " ".join(original[40:])),
        *others,
        row(1, " ".join(copy[:40]), " ".join(copy[40:])),
    ]
    _, rejected, kept = run(tmp_path, rows)
    assert rejected == {"t:1": ("near duplicate", 0)} and "t:0" in kept


def test_mcqs_sharing_only_their_stem_are_kept_as_rejected_candidates(tmp_path, monkeypatch):
    rnd = random.Random(1)
    rows = mcqs(rnd, 0, 24)
    rep, rejected, kept = run(tmp_path, rows)
    assert rejected == {} and len(kept) == 24
    assert rep["per_source"]["t"]["changed"]["candidate rejected by verification"] > 0
    monkeypatch.setattr(dedup, "VERIFY", dict.fromkeys(dedup.VERIFY, 0.0))  # the same candidates, unverified
    _, rejected, _ = run(tmp_path, rows)
    assert rejected and all(reason == "near duplicate" for reason, _ in rejected.values())


def test_exact_copies_are_removed_whatever_their_case_spacing_and_punctuation(tmp_path):
    rnd = random.Random(2)
    q, a = " ".join(words(rnd, 20)), " ".join(words(rnd, 40))
    rows = [row(0, q, a), row(1, " ".join(words(rnd, 20)), "other"), row(2, q, a), row(3, f"  {q.upper()}!", f"{a}.")]
    _, rejected, kept = run(tmp_path, rows)
    assert rejected == {"t:2": ("exact duplicate", 0), "t:3": ("exact duplicate", 0)} and kept == ["t:0", "t:1"]


def test_report_counts_add_up(tmp_path):
    rnd = random.Random(3)
    originals = [(" ".join(words(rnd, 15)), " ".join(words(rnd, 60))) for _ in range(30)]
    rows = [row(n, *originals[n % 30]) for n in range(40)]  # 10 exact copies
    rows += [row(40 + n, originals[n][0], originals[n][1].rsplit(" ", 3)[0] + " changed") for n in range(5)]
    rows += mcqs(rnd, 45, 10)  # kept
    rep, rejected, kept = run(tmp_path, rows)
    t = rep["per_source"]["t"]
    assert rep["in"] == 55 == rep["out"] + rep["dropped"] == len(kept) + len(rejected)
    assert t["dropped"] == {"exact duplicate": 10, "near duplicate": 5} and rep["dropped"] == 15
    assert t["changed"].get("candidate rejected by verification", 0) <= rep["out"]


def test_the_result_does_not_depend_on_how_the_file_is_split(tmp_path, monkeypatch):
    small = tmp_path / "small.jsonl"
    small.write_bytes(b"a\nbb\n\nccc\nd")
    for size in range(1, 14):  # every line read once, by the range it begins in, whatever the cuts
        monkeypatch.setattr(dedup, "JOB", size)
        assert [x for job in dedup._ranges(small) for x in dedup._lines(*job)] == small.read_bytes().splitlines(True)
    rnd = random.Random(4)
    base = [(" ".join(words(rnd, 10)), " ".join(words(rnd, rnd.randint(0, 80)))) for _ in range(60)]
    rows = [row(n, q, a + rnd.choice(["", f" x{n}"])) for n, (q, a) in enumerate(rnd.choices(base, k=120))]
    monkeypatch.setattr(dedup, "JOB", 1 << 22)
    whole = run(tmp_path, rows)[1:]
    monkeypatch.setattr(dedup, "JOB", 2000)  # a few rows a worker's range
    monkeypatch.setattr(dedup, "BATCH", 500)  # and fewer a batch
    assert run(tmp_path, rows)[1:] == whole
    assert {reason for reason, _ in whole[0].values()} == {"exact duplicate", "near duplicate"}


def test_shingles_are_word_5_grams_of_each_text_alone():
    texts = ["One two three four five six", "", "Short text", "one  two, THREE four five six"]
    flat, offsets = dedup.shingles(*dedup.words(texts))
    assert list(np.diff(offsets)) == [2, 1, 1, 2]  # 6 words: 2 grams; fewer than 5: one
    assert list(flat[:2]) == list(flat[4:]) and flat[2] == 0  # case, spacing and punctuation aside
    alone = [dedup.shingles(*dedup.words([t]))[0] for t in texts]
    assert all((flat[a:b] == x).all() for a, b, x in zip(offsets, offsets[1:], alone))
