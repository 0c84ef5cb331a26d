"""The sections behind the numbers: lm-eval's samples per task, and each Medprompt stage per question."""

from .markup import esc, filters, flag, fmt, pairs, table
from .paths import slug
from .stats import wilson

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _letter(i) -> str:
    return LETTERS[i] if isinstance(i, int) and 0 <= i < len(LETTERS) else esc(i)


def _index(letter) -> int | None:
    return LETTERS.index(letter) if isinstance(letter, str) and len(letter) == 1 and letter in LETTERS else None


def _options(options: list, choice, gold) -> str:
    items = "".join(
        f'<li class="{" ".join(c for c, on in (("chosen", i == choice), ("gold", i == gold)) if on)}">'
        f"<b>{_letter(i)}</b> {esc(o)}</li>"
        for i, o in enumerate(options)
    )
    return f'<ol class="options">{items}</ol>' if options else ""


def _question(text, context, options, choice, gold) -> str:
    ctx = f'<details class="context"><summary>context</summary>{esc(context)}</details>' if context else ""
    return f'<div class="q">{esc(text)}</div>{ctx}{_options(options, choice, gold)}'


def _phases(ev) -> str:
    """The run's wall by phase (engine start, embedding, generation, vote), where evaluation.json has it."""
    parts = [f"{k.removesuffix('_s').replace('_', ' ')} {v:.1f} s" for k, v in (ev.get("phases_s") or {}).items()]
    return f" ({esc(', '.join(parts))})" if parts else ""


def _interval(k, n) -> str:
    """Accuracy in percent and its 95% Wilson interval ('-' without questions)."""
    ci = wilson(k, n)
    return f"{fmt(100 * k / n, 1)} [{fmt(ci[0], 1)}, {fmt(ci[1], 1)}]" if ci else "-"


def task_samples(task: str, t: dict) -> str:
    """One task's samples, closed until a measured number or the task list opens it."""
    ident, rows = "samples-" + slug(task), t["rows"]
    marks = [r["correct"] for r in rows]
    k, n = sum(m is True for m in marks), sum(m is not None for m in marks)
    body = []
    for r in rows:
        state, cell = flag(r["correct"])
        mc = bool(r["options"])
        body.append((
            f'id="sample-{esc(slug(task))}-{esc(slug(r["doc_id"]))}" data-doc-id="{esc(r["doc_id"])}" '
            f'data-correct="{state}"',
            [fmt(r["doc_id"]), _question(r["question"], r["context"], r["options"], r["choice"], r["gold"]),
             _letter(r["choice"]) if mc else f"<pre>{esc(r['choice'])}</pre>", _letter(r["gold"]) if mc else
             esc(r["gold"]), cell if r["correct"] is not None else fmt(r["score"])],
        ))  # fmt: skip
    return (
        f'<details class="task" id="{esc(ident)}"><summary><b>{esc(task)}</b> '
        f"<span>{k}/{n} correct, {_interval(k, n)} (lm-eval task {esc(t['task'])})</span></summary>"
        f'<p class="file">{esc(t["file"])}</p>{filters(ident + "-rows", marks)}'
        + table(
            ["doc", "question and options (choice: bold, gold: green)", "choice", "gold", "correct"],
            body,
            "samples",
            f' id="{esc(ident)}-rows"',
        )
        + "</details>"
    )


def _setting(v) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{a}={b}" for a, b in v.items())
    return ", ".join(map(str, v)) if isinstance(v, list) else v


def samples_section(evals: list) -> str:
    if not evals:
        return '<section id="samples"><h2>Samples</h2><p>No lm-eval evaluation with --log_samples in this run.</p></section>'
    parts = ['<section id="samples"><h2>Samples</h2><p>Every measured number opens its questions here (lm-eval '
             "--log_samples): the model's choice is the option of highest log-likelihood.</p>"]  # fmt: skip
    for e in evals:
        settings = pairs((k, esc(_setting(v))) for k, v in e["settings"].items())
        overview = []
        for task, t in e["tasks"].items():
            marks = [r["correct"] for r in t["rows"]]
            k, n = sum(m is True for m in marks), sum(m is not None for m in marks)
            overview.append([f'<a href="#samples-{esc(slug(task))}">{esc(task)}</a>', str(len(t["rows"])), str(k),
                             _interval(k, n)])  # fmt: skip
        parts.append(
            f'<h3>{esc(e["folder"])}</h3><p class="file">{esc(e["results"])}</p>'
            f'<div class="cols"><div>{table(["task", "samples", "correct", "accuracy [95% Wilson]"], overview)}</div>'
            f"<div><h4>Harness settings</h4>{settings}</div></div>"
            + "".join(task_samples(task, t) for task, t in e["tasks"].items())
        )
    return "".join(parts) + "</section>"


def _members(row: dict) -> str:
    rows = [
        [str(m["member"]), str(a.get("attempt")), esc(a.get("parsed")), esc(a.get("answer")), fmt(a.get("completion_tokens")),
         f"<code>{esc(a.get('text'))}</code>" + (f' <span class="bad">{esc(a["error"])}</span>' if a.get("error") else "")]
        for m in row["members_detail"] for a in m["attempts"]
    ]  # fmt: skip
    return (
        f"<details><summary>{len(row['members_detail'])} members, {row['attempts']} attempts</summary>"
        + table(["member", "attempt", "parsed (shuffled)", "answer", "tokens", "text"], rows, "members")
        + "</details>"
    )


def medprompt_stage(m: dict) -> str:
    ident, ev, cost = m["id"], m["evaluation"], m["cost"]
    body = []
    for r in m["rows"]:
        state, cell = flag(bool(r["correct"]))
        votes = ", ".join(f"{esc(a)}: {c}" for a, c in (r.get("votes") or {}).items()) or "-"
        gold, chosen = _index(r.get("gold")), _index(r.get("answer"))
        body.append((
            f'id="{esc(ident)}-{esc(slug(r["qid"]))}" data-qid="{esc(r["qid"])}" data-correct="{state}"',
            [esc(r["qid"]), _question(r.get("question") or "", None, r["options"], chosen, gold) + _members(r),
             votes + (' <span class="tag">draw</span>' if r.get("draw") else ""), esc(r.get("answer")),
             esc(r.get("gold")), cell, fmt(r["attempts"]), fmt(r["tokens"])],
        ))  # fmt: skip
    summary = pairs([
        ("accuracy [95% Wilson]", f"{m['k']}/{m['n']} = {_interval(m['k'], m['n'])}"),
        ("parse rate", fmt(ev.get("parse_rate"))), ("draws", fmt(ev.get("draws"))),
        ("members run / full", f"{fmt(ev.get('members_run'))} / {fmt(ev.get('members_full'))}"),
        ("generated tokens", fmt(ev.get("generated_tokens"))), ("prompt tokens", fmt(ev.get("prompt_tokens"))),
        ("tokens per question", fmt(cost["tokens_per_question"], 1)),
        ("attempts per question", fmt(cost["attempts_per_question"], 2)),
        ("attempts per member", fmt(cost["attempts_per_member"], 2)),
        ("engine", esc(ev.get("engine"))), ("retry", esc(ev.get("retry"))), ("wall", f"{fmt(ev.get('wall_s'), 1)} s" + _phases(ev)),
    ])  # fmt: skip
    by_cost = table(["attempts on the question", "questions", "accuracy %"],
                    [[str(a), str(n), fmt(acc, 1)] for a, n, acc in cost["by_attempts"]])  # fmt: skip
    marks = [bool(r["correct"]) for r in m["rows"]]
    return (
        f"<h3>{esc(m['dataset'])} <small>{esc(m['folder'])}</small></h3>"
        f'<div class="cols"><div>{summary}</div><div><h4>Accuracy against cost</h4>{by_cost}</div></div>'
        f'<details class="task" id="{esc(ident)}"><summary><b>{m["n"]} questions</b> <span>{m["k"]} correct by '
        "majority vote; open for each question's members, attempts and votes</span></summary>"
        + filters(ident + "-rows", marks)
        + table(
            [
                "qid",
                "question, options (majority: bold, gold: green) and members",
                "votes",
                "majority",
                "gold",
                "correct",
                "attempts",
                "tokens",
            ],
            body,
            "samples",
            f' id="{esc(ident)}-rows"',
        )
        + "</details>"
    )


def medprompt_section(mps: list) -> str:
    inner = "".join(medprompt_stage(m) for m in mps) or "<p>No Medprompt stage in this run.</p>"
    return f'<section id="medprompt"><h2>Medprompt</h2>{inner}</section>'
