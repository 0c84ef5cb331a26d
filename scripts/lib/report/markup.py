"""The few HTML helpers every section uses. Every string from a run passes through `esc` (the data is untrusted:
a question holding markup shows as text)."""

import json
from html import escape


def esc(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def fmt(value, digits: int = 3) -> str:
    """A number as shown (rounded, no trailing zeros), '-' for none; anything else escaped."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return esc(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}".rstrip("0").rstrip(".") or "0"
    return esc(value)


def short(sha, n: int = 12) -> str:
    """A hash shortened, the whole of it in the tooltip."""
    return f'<code title="{esc(sha)}">{esc(str(sha)[:n])}</code>' if sha else "-"


def table(headers: list, rows: list, cls: str = "", attrs: str = "") -> str:
    """A table of cells already marked up (escape first); rows are lists of cells or (tr attributes, cells)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        f"<tr{' ' + r[0] if isinstance(r, tuple) else ''}>"
        + "".join(f"<td>{c}</td>" for c in (r[1] if isinstance(r, tuple) else r))
        + "</tr>"
        for r in rows
    )
    return f'<table class="{cls}"{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def pairs(items) -> str:
    """A compact key/value table of (label, cell marked up) pairs, the pairs whose cell is empty left out."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in items if v not in (None, "", "-"))
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def pre(obj) -> str:
    """A JSON value, indented, as text."""
    return f"<pre>{esc(json.dumps(obj, indent=1, default=str))}</pre>"


def filters(target: str, rows: list, labels=("Correct", "Incorrect"), extra: str = "") -> str:
    """All / correct / incorrect buttons over the rows of the table `target` (rows carry data-correct 1, 0 or ''),
    `labels` naming the two outcomes; `extra`: further controls (a <select data-key=K> shows the rows whose data-K
    is its value)."""
    n_ok, n_bad = sum(r is True for r in rows), sum(r is False for r in rows)
    buttons = [("all", f"All ({len(rows)})"), ("correct", f"{labels[0]} ({n_ok})"),
               ("incorrect", f"{labels[1]} ({n_bad})")]  # fmt: skip
    return (
        f'<div class="filters" data-for="{esc(target)}">'
        + "".join(
            f'<button type="button" data-filter="{f}" aria-pressed="{str(f == "all").lower()}">{label}</button>'
            for f, label in buttons
        )
        + extra
        + "</div>"
    )


def flag(correct) -> tuple[str, str]:
    """(data-correct value, the cell) of a 0/1 outcome; None is neither."""
    if correct is None:
        return "", "-"
    return ("1", '<span class="ok">&#10003;</span>') if correct else ("0", '<span class="bad">&#10007;</span>')
