"""The page: a sticky table of contents, the verify tables (reported against measured with 95% Wilson intervals,
each measured number a link to its samples), the drill-down sections (lm-eval samples, judged suites, Medprompt),
the diff-eval comparisons, the training curves, the provenance and the plan with its cost; one HTML file with its
style, script and plots inline (nothing is fetched). A model's evaluations (`model_eval`) have no curves and no
plan."""

from pathlib import Path

from . import diffs, drilldown, provenance, verdicts
from .markup import esc, fmt, table
from .paths import slug
from .svg import line_chart, strip

ASSETS = Path(__file__).parent
VERDICT_CLASS = {True: "ok", False: "bad", None: "apart"}
STANDARD = ("column", "task", "reported", "measured", "stderr", "delta", "tolerance", "result", "k", "n", "ci", "link",
            "select")  # fmt: skip


def _verdict(result) -> bool | None:
    """pass True, FAIL (any kind) False, anything else (a not-comparable reason) None."""
    return True if result == "pass" else False if str(result).startswith("FAIL") else None


def _result(text) -> str:
    return f'<span class="{VERDICT_CLASS[_verdict(text)]}">{esc(text)}</span>'


def verify_table(t: dict) -> str:
    extra = [k for r in t["rows"] for k in r if k not in STANDARD]
    extra = list(dict.fromkeys(extra))  # the gain columns of a calibrated table, in order
    rows, digits = [], 1 if t["top"] >= 100 else 3
    for r in t["rows"]:
        measured = fmt(r.get("measured"))
        if r["link"] and r.get("measured") is not None:
            select = f' data-select="{esc(r["select"])}"' if r["select"] else ""
            measured = f'<a class="drill" href="#{esc(r["link"])}"{select}>{measured}</a>'
        ci = r["ci"]
        ok = _verdict(r.get("result"))
        rows.append((
            f'data-task="{esc(r.get("task"))}"',
            [esc(r.get("column")), esc(r.get("task")), fmt(r["n"]), fmt(r.get("reported")), measured,
             f"{fmt(ci[0], digits)} - {fmt(ci[1], digits)}" if ci else "-", fmt(r.get("delta")),
             fmt(r.get("tolerance")), _result(r.get("result")),
             strip(r.get("measured"), ci, r.get("reported"), r.get("tolerance"), ok, t["top"]),
             *(fmt(r.get(k)) for k in extra)],
        ))  # fmt: skip
    headers = ["column", "task", "n", "reported", "measured", "95% Wilson", "delta", "tolerance", "result",
               f"on 0 - {fmt(t['top'])}", *extra]  # fmt: skip
    decided = [v for v in (_verdict(r.get("result")) for r in t["rows"]) if v is not None]
    passed = sum(decided)
    return (
        f'<div class="vt" id="{esc(t["id"])}"><h3>{esc(t.get("table"))} &middot; {esc(t.get("model"))} &middot; '
        f"{esc(t.get('setting'))}{' &middot; baseline ' + esc(t['baseline']) if t.get('baseline') else ''}</h3>"
        f'<p><b class="{"ok" if passed == len(decided) else "bad"}">{passed} of {len(decided)} within tolerance</b>. '
        f"Measured: <code>{esc(t.get('results'))}</code> (<code>{esc(t['file'])}</code>). The interval of an "
        "aggregate is Wilson's at its effective sample size. On the table's scale: the band is reported +- tolerance, "
        "the dot measured, the whisker its 95% interval.</p>" + table(headers, rows, "verify") + "</div>"
    )


def tables_section(tables: list) -> str:
    inner = "".join(verify_table(t) for t in tables) or "<p>No verify table in this run (make verify).</p>"
    return f'<section id="tables"><h2>Reported against measured</h2>{inner}</section>'


def _chained(runs: list, key: str) -> list:
    """DPO runs end to end on one step axis (each run starts where the previous ended)."""
    out, start = [], 0
    for name, c in runs:
        pts = c.get(key) or []
        out.append((name, [(start + x, y) for x, y in pts]))
        start += (max(x for x, _ in pts) + 1) if pts else 0
    return out


def curves_section(curves: dict) -> str:
    parts = []
    if curves["sft"]:
        parts.append(line_chart([("sft", curves["sft"]["loss"])], f"SFT loss by step ({curves['sft']['source']})"))
    dpo = curves["dpo"]
    if dpo:
        sources = ", ".join(sorted({c["source"] for _, c in dpo}))
        for key, title in (("loss", "DPO loss"), ("acc", "DPO reward accuracy"), ("margin", "DPO reward margin")):
            parts.append(line_chart(_chained(dpo, key), f"{title} by micro-step, runs end to end ({sources})"))
    inner = f'<div class="charts">{"".join(parts)}</div>' if parts else "<p>No training stage in this run.</p>"
    return f'<section id="curves"><h2>Training curves</h2>{inner}</section>'


def summary(d: dict) -> str:
    r = d.get("plan_recipe") or {}
    stages = d["stages"]
    gits = sorted({s["git_sha"] for s in stages if s["git_sha"]})
    recipes = sorted(
        {f"{s['recipe']['path']} (profile {s['recipe']['profile']})" for s in stages if s["recipe"]["path"]}
    )
    rows = [
        ["evaluations of" if d["model_eval"] else "run", f"<code>{esc(d['path'])}</code>"],
        ["recipe", " ".join(f"{k} {esc(r[k])}" for k in ("dir", "profile", "world_size") if r.get(k) is not None)
         if r else esc(", ".join(recipes))],
        ["stages", f"{len(stages)}, {fmt(sum(s['wall_s'] or 0 for s in stages), 1)} s of wall time"],
        ["first start / last finish", f"{esc(min((s['started'] or '' for s in stages), default=''))} / "
                                      f"{esc(max((s['finished'] or '' for s in stages), default=''))}"],
        ["git", ", ".join(f"<code>{esc(g)}</code>" for g in gits) or "-"],
    ]  # fmt: skip
    return f'<header id="summary"><h1>{esc(d["run"])}</h1>{table(["", ""], rows, "kv")}</header>'


def toc(d: dict) -> str:
    def items(pairs):
        return "<ul>" + "".join(f'<li><a href="#{esc(i)}">{esc(t)}</a></li>' for i, t in pairs) + "</ul>"

    tasks = [("samples-" + slug(task), task) for e in d["evaluations"] for task in e["tasks"]]
    diff_items = ((x["id"], f"{x['a'].get('model')} / {x['b'].get('model')}") for x in d["diffs"])
    return (
        f'<nav id="toc"><a class="home" href="#summary">{esc(d["run"])}</a><ul>'
        f'<li><a href="#tables">Reported vs measured</a>{items((t["id"], t.get("table")) for t in d["tables"])}</li>'
        f'<li><a href="#samples">Samples</a>{items(tasks)}</li>'
        f'<li><a href="#judged">Judged suites</a>{items((s["id"], s["folder"]) for s in d["judged"])}</li>'
        f'<li><a href="#medprompt">Medprompt</a>{items((m["id"], m["dataset"]) for m in d["medprompt"])}</li>'
        f'<li><a href="#diff">Compared (diff-eval)</a>{items(diff_items)}</li>'
        + ("" if d["model_eval"] else '<li><a href="#curves">Training curves</a></li>')
        + f'<li><a href="#provenance">Provenance</a>{items((s["id"], s["folder"]) for s in d["stages"])}</li>'
        + ("" if d["model_eval"] else '<li><a href="#plan">Plan and cost</a></li>')
        + "</ul></nav>"
    )


def page(d: dict) -> str:
    css, js = (ASSETS / "page.css").read_text(), (ASSETS / "page.js").read_text()
    ids = {f"sample-{slug(task)}-{slug(r['doc_id'])}" for e in d["evaluations"] for task, t in e["tasks"].items()
           for r in t["rows"]}  # fmt: skip
    what = "evaluation" if d["model_eval"] else "run"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f"<title>Aloe {what} report: {esc(d['run'])}</title><style>{css}</style></head><body>"
        + toc(d)
        + "<main>"
        + summary(d)
        + tables_section(d["tables"])
        + drilldown.samples_section(d["evaluations"])
        + verdicts.section(d["judged"], ids)
        + drilldown.medprompt_section(d["medprompt"])
        + diffs.section(d["diffs"])
        + ("" if d["model_eval"] else curves_section(d["curves"]))
        + provenance.stages_section(d["stages"], d["sources"])
        + (
            ""
            if d["model_eval"]
            else provenance.plan_section(d["plans"], d["cost"], (d["plan_recipe"] or {}).get("profile"))
        )
        + f"</main><script>{js}</script></body></html>\n"
    )


def write(d: dict, out) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page(d))
    return out
