"""A Medprompt stage (medprompt-<dataset>/) per question: the question, each ensemble member's attempts and answer,
the majority vote and whether it is right (out/generations.jsonl, out/evaluation.json), and what it cost."""

from collections import defaultdict
from pathlib import Path
from statistics import mean

from data_prep.benchmarks import DataError, load, read_jsonl
from scripts.core import AloeError, read_json

from .stats import wilson


def _questions(dataset: str, path: Path | None) -> dict:
    """{qid: Question} from the stage's question file, {} when it is gone (the page then shows ids only)."""
    if not path or not path.is_file():
        return {}
    try:
        return {q.id: q for q in load(dataset, "all", path=str(path))}
    except DataError:
        return {}


def read(folder: Path, questions: Path | None, name: str) -> dict:
    """The stage as the page shows it (`name`: its folder as shown): evaluation summary, cost, and one row per question
    with its members."""
    ev = read_json(folder / "out" / "evaluation.json")
    if not isinstance(ev.get("per_question"), list):
        raise AloeError("no per_question list: not a Medprompt evaluation", file=folder / "out" / "evaluation.json")
    gens = defaultdict(list)
    f = folder / "out" / "generations.jsonl"
    for _, g in read_jsonl(f) if f.is_file() else ():
        gens[g.get("qid")].append(g)
    qs = _questions(ev.get("dataset", ""), questions)
    rows = []
    for p in ev["per_question"]:
        recs = sorted(gens.get(p.get("qid"), []), key=lambda g: (g.get("member", 0), g.get("attempt", 0)))
        members = defaultdict(list)
        for g in recs:
            members[g.get("member")].append(g)
        q = qs.get(p.get("qid"))
        rows.append({**p, "question": q.question if q else None, "options": list(q.options) if q else [],
                     "members_detail": [{"member": m, "attempts": a} for m, a in members.items()],
                     "attempts": len(recs), "tokens": sum(g.get("completion_tokens") or 0 for g in recs)})  # fmt: skip
    n, k = len(rows), sum(bool(r["correct"]) for r in rows)
    cost = {
        "tokens_per_question": mean(r["tokens"] for r in rows) if rows else None,
        "attempts_per_question": mean(r["attempts"] for r in rows) if rows else None,
        "attempts_per_member": sum(r["attempts"] for r in rows) / max(ev.get("members_run") or 0, 1),
        "by_attempts": _by_attempts(rows),
    }
    summary = {key: v for key, v in ev.items() if key != "per_question"}
    return {"dataset": ev.get("dataset"), "folder": name, "evaluation": summary, "k": k, "n": n,
            "ci": wilson(k, n), "cost": cost, "rows": rows}  # fmt: skip


def _by_attempts(rows: list) -> list:
    """Accuracy against cost: [(attempts spent on a question, questions, accuracy %)]."""
    groups = defaultdict(list)
    for r in rows:
        groups[r["attempts"]].append(bool(r["correct"]))
    return [(a, len(c), 100 * sum(c) / len(c)) for a, c in sorted(groups.items())]
