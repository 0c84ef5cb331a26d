"""Plain-text tables for terminal summaries (and the same rows as markdown)."""


def _cell(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def table(headers, rows) -> str:
    cells = [[_cell(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def fmt(r):
        return " | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()

    return "\n".join([fmt(headers), "-+-".join("-" * w for w in widths), *(fmt(r) for r in cells)])


def markdown(headers, rows) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(out)
