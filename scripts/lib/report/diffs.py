"""`make diff-eval` comparisons on the page: the JSON evals/diff.py writes (schema aloe-repro/diff-eval@1: the
settings that differ, per task n, accuracy of A and B, b, c and McNemar's p, every flipped question), given with
--diff or found under runs/diff-eval/ when one of its sides lies in the run folder."""

from pathlib import Path

from evals.diff import SCHEMA
from scripts.core import AloeError, read_json

from .markup import esc, fmt, pairs, table
from .paths import inside, shown, slug

KEYS = ("a", "b", "settings", "tasks", "pooled", "one_side", "not_compared")


def read(f: Path, run: Path, i: int) -> dict:
    """One diff-eval JSON, checked; `i` numbers it on the page."""
    d = read_json(f)
    if not isinstance(d, dict) or d.get("schema") != SCHEMA:
        raise AloeError(f"not a diff-eval comparison (schema {SCHEMA}): make diff-eval writes one", file=f)
    missing = [k for k in KEYS if k not in d]
    if missing:
        raise AloeError(f"a diff-eval comparison without {', '.join(missing)}", file=f)
    return {**d, "id": f"diff-{i}", "file": shown(f, run)}


def found(root: Path, run: Path) -> list:
    """The diff-eval JSON files under `root` (runs/diff-eval/) whose side A or B lies in the run folder."""
    out = []
    for f in sorted(Path(root).glob("*.json")):
        d = read_json(f)
        sides = [d.get(s) or {} for s in ("a", "b")] if isinstance(d, dict) and d.get("schema") == SCHEMA else []
        if any(inside(x, run) for s in sides for x in (s.get("path"), s.get("results")) if x):
            out.append(f)
    return out


# --- the page -------------------------------------------------------------------------------------------------------
def _pct(v) -> str:
    return "-" if v is None else fmt(100 * v, 1)


def _value(s: dict, side: str) -> str:
    if s.get(side) is not None or "per_task" not in s:
        return f"<code>{esc(s.get(side)) if s.get(side) is not None else '-'}</code>"
    i = "ab".index(side)
    return "<br>".join(f"{esc(t)}: <code>{esc(v[i])}</code>" for t, v in s["per_task"].items())


def _flips(d: dict, t: dict) -> str:
    ident = f"{d['id']}-{slug(t['task'])}"
    rows = [
        (f'id="{esc(ident)}-{esc(slug(f["doc_id"]))}"',
         [esc(f["doc_id"]), esc(f["question"]), esc(f["target"]), esc(f["answer_a"]), esc(f["answer_b"]),
          esc(str(f["right_in"]).upper())])
        for f in t["flips"]
    ]  # fmt: skip
    return (
        f'<details class="task" id="{esc(ident)}"><summary><b>{esc(t["task"])}</b> <span>{len(t["flips"])} flipped: '
        f"{t['b']} right in A only, {t['c']} right in B only</span></summary>"
        + table(["doc_id", "question", "target", "A", "B", "right in"], rows, "samples", f' id="{esc(ident)}-rows"')
        + "</details>"
    )


def comparison(d: dict) -> str:
    a, b = d["a"], d["b"]
    sides = pairs([
        *((w.upper(), f"<code>{esc(s.get('path'))}</code> {esc(s.get('model'))} (<code>{esc(s.get('results'))}</code>)")
          for w, s in (("a", a), ("b", b))),
        ("file", f"<code>{esc(d['file'])}</code>"),
    ])  # fmt: skip
    settings = [
        [esc(s["setting"]), _value(s, "a"), _value(s, "b"), esc(s["status"]),
         esc(", ".join(s["tasks"]) if isinstance(s["tasks"], list) else s["tasks"] or "run")]
        for s in d["settings"]
    ]  # fmt: skip
    tasks = [
        [f'<a href="#{esc(d["id"])}-{esc(slug(t["task"]))}">{esc(t["task"])}</a>' if t["flips"] else esc(t["task"]),
         esc(t["metric_a"] if t["metric_a"] == t["metric_b"] else f"{t['metric_a']} / {t['metric_b']}"), fmt(t["n"]),
         _pct(t["acc_a"]), _pct(t["acc_b"]), fmt(t["b"]), fmt(t["c"]), fmt(t["p"], 4)]
        for t in d["tasks"]
    ]  # fmt: skip
    p = d["pooled"]
    tasks.append(["<b>all</b>", "", fmt(p["n"]), _pct(p["acc_a"]), _pct(p["acc_b"]), fmt(p["b"]), fmt(p["c"]),
                  fmt(p["p"], 4)])  # fmt: skip
    notes = [f"{esc(t['task'])}: {len(t['only_a'])} questions in A only, {len(t['only_b'])} in B only"
             for t in d["tasks"] if t["only_a"] or t["only_b"]]  # fmt: skip
    notes += [f"tasks in {w.upper()} only: {esc(', '.join(d['one_side'][w]))}" for w in "ab" if d["one_side"].get(w)]
    notes += [f"not compared: {esc(t['task'])} ({esc(t['why'])})" for t in d["not_compared"]]
    return (
        f'<div class="diff" id="{esc(d["id"])}"><h3>{esc(a.get("model"))} (A) against {esc(b.get("model"))} (B)</h3>'
        f"{sides}<h4>Settings that differ</h4>"
        + (table(["setting", "A", "B", "status", "tasks"], settings) if settings else "<p>None.</p>")
        + "<h4>Per task</h4><p>Accuracy (%) on the questions both sides answered; b = right in A, wrong in B; c = wrong"
        " in A, right in B; p: McNemar's exact test (two-sided). A task opens its flipped questions.</p>"
        + table(["task", "metric", "n", "acc A", "acc B", "b", "c", "p"], tasks, "verify")
        + "".join(f"<p>{n}.</p>" for n in notes)
        + "".join(_flips(d, t) for t in d["tasks"] if t["flips"])
        + "</div>"
    )


def section(diffs: list) -> str:
    inner = "".join(comparison(d) for d in diffs) or (
        "<p>No diff-eval comparison of this run (make diff-eval A= B= writes one under runs/diff-eval/).</p>"
    )
    return f'<section id="diff"><h2>Evaluations compared (diff-eval)</h2>{inner}</section>'
