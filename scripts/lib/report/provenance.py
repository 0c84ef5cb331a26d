"""The provenance chain: each stage's manifest (inputs and outputs with their hashes, recipe values with their
[P]/[D]/[C] tags, environment lock stamps, code hash, tool versions, seed, launcher and batch, wall time) and each
job's plan with its cost (footprint.py: GPU-hours, energy and CO2 where the paper publishes hours; the measured
wall time)."""

from .markup import esc, fmt, pairs, pre, short, table
from .paths import slug

TAG_NAMES = {"P": "published", "D": "derived", "C": "recipe choice"}


def _files(rows: list) -> str:
    return table(["name", "path", "sha256"], [[esc(n), f"<code>{esc(p)}</code>", short(s, 16)] for n, p, s in rows])


def _values(recipe: dict) -> str:
    if recipe["argv"] is not None:
        return f"<pre>{esc(' '.join(map(str, recipe['argv'])))}</pre>"
    rows = [
        [f"<code>{esc(k)}</code>", esc(v),
         f'<span class="tag t{t}" title="{esc(TAG_NAMES[t])}">[{t}]</span>' if t else "",
         esc(note) + (' <span class="tag">profile</span>' if by_profile else "")]
        for k, v, t, note, by_profile in recipe["values"]
    ]  # fmt: skip
    return table(["key", "value", "tag", "why (the recipe file's comment)"], rows, "values") if rows else ""


def _batch(s: dict) -> str:
    parts = [s.get("world_size"), s.get("micro_batch"), s.get("grad_accum")]
    if None in parts:
        return fmt(s.get("world_size"))
    return (
        f"{parts[0]} x {parts[1]} x {parts[2]} = {fmt(s.get('total_batch'))} (world size x micro batch x accumulation)"
    )


def stage(s: dict) -> str:
    r, code = s["recipe"], s["code"]
    changed = {True: ' <span class="bad">changed since the run: tags read from the current file</span>',
               False: ' <span class="ok">unchanged since the run</span>', None: ""}[r["changed"]]  # fmt: skip
    facts = pairs([
        ("status", esc(s["status"])), ("started", esc(s["started"])), ("finished", esc(s["finished"])),
        ("wall", f"{fmt(s['wall_s'], 1)} s" if s["wall_s"] is not None else None), ("git", short(s["git_sha"], 40)),
        ("code", f"{short(code.get('sha256'))} over {len(code.get('files') or [])} files" if code else None),
        ("environment lock", ", ".join(f"{esc(k)} {short(v)}" for k, v in (s["environment"] or {}).items())),
        ("tools", ", ".join(f"{esc(k)} {esc(v)}" for k, v in (s["tools"] or {}).items() if v)),
        ("seed", fmt(s["seed"])), ("batch", _batch(s)),
        ("launcher", ", ".join(f"{esc(k)}={esc(v)}" for k, v in (s["launcher"] or {}).items())),
        ("recipe", f"<code>{esc(r['path'])}</code> profile {esc(r['profile'])} {short(r['sha256'])}{changed}"
         if r["path"] else None),
    ])  # fmt: skip
    runs = (
        table(
            ["run", "data", "wall s", "loss first/last", "reward acc first/last", "margin first/last"],
            [
                [
                    esc(x.get("run")),
                    esc(str(x.get("data", "")).rsplit("/", 1)[-1]),
                    fmt(x.get("wall_s"), 1),
                    f"{fmt(x.get('loss_first'))} / {fmt(x.get('loss_last'))}",
                    f"{fmt(x.get('acc_first'))} / {fmt(x.get('acc_last'))}",
                    f"{fmt(x.get('reward_margin_first'), 5)} / {fmt(x.get('reward_margin_last'), 5)}",
                ]
                for x in s["runs"]
            ],
        )
        if s.get("runs")
        else ""
    )
    return (
        f'<details class="stage" id="{esc(s["id"])}"><summary><b>{esc(s["folder"])}</b> '
        f"<span>{esc(s['stage'])} &middot; {esc(s['status'])} &middot; {fmt(s['wall_s'], 1)} s &middot; started "
        f"{esc(s['started'])} &middot; git {esc(str(s['git_sha'] or '-')[:12])}</span></summary>"
        f'<div class="cols"><div>{facts}</div><div><h4>Inputs</h4>{_files(s["inputs"])}<h4>Outputs</h4>'
        f"{_files(s['outputs'])}</div></div>{runs}"
        f"<h4>Recipe values</h4>{_values(r)}<h4>Metrics</h4>{pre(s['metrics'])}</details>"
    )


def stages_section(stages: list, sources: list) -> str:
    total = sum(s["wall_s"] or 0 for s in stages)
    files = table(["recipe file", "sha256 at plan time", "now"],
                  [[f"<code>{esc(p)}</code>", short(a, 16),
                    "same" if a == b else '<span class="bad">changed</span>' if b else "missing"]
                   for p, a, b in sources])  # fmt: skip
    return (
        '<section id="provenance"><h2>Provenance</h2>'
        f"<p>{len(stages)} stage manifests in the order they ran, {fmt(total, 1)} s of wall time in all. Open a stage "
        "for its inputs, outputs, environment and recipe values.</p>"
        + "".join(stage(s) for s in stages)
        + (f"<h4>Recipe files the plan read</h4>{files}" if sources else "")
        + "</section>"
    )


def _cost_note(cost: dict, profile) -> str:
    method = (f"GPU-hours are the paper's wall hours for the job's stage (the recipe's <code>hardware</code> hours, "
              f"P-BETA Tables 5-8, scaled to this layout) times its GPUs; energy at {fmt(cost['kw_per_gpu'], 4)} kW "
              f"per GPU and {fmt(1000 * cost['kg_co2_per_kwh'], 1)} g CO2 per kWh, P-BETA Appendix D's method "
              "(scripts/lib/chain.py). Measured wall: the stage manifest of what the job ran.")  # fmt: skip
    if cost["all"]:
        return f"<p>{method}</p>"
    why = (f"profile {esc(profile)} sets them to null, as it runs on other hardware than the paper's"
           if profile else "the recipe publishes none for this layout")  # fmt: skip
    return (f"<p>No job of this run has published hours: {why}; so no GPU-hours, energy or CO2 are shown ('-'). "
            f"{method}</p>")  # fmt: skip


def plan_section(plans: list, cost: dict | None, profile=None) -> str:
    """One row per job, with its cost (footprint.costs) and, last, the totals."""
    ids = {p["id"] for p in plans}
    jobs = (cost or {}).get("jobs") or {}
    rows = []
    for p in plans:
        after = ", ".join(
            f'<a href="#plan-{esc(slug(a))}">{esc(a)}</a>' if f"plan-{slug(a)}" in ids else esc(a)
            for a in p.get("after") or []
        )
        c, args = jobs.get(p.get("name")) or {}, " ".join(map(str, p.get("args") or []))
        fp = c.get("footprint") or (None, None, None)
        rows.append((
            f'id="{esc(p["id"])}"',
            [f"<b>{esc(p.get('name'))}</b>" + (f'<code class="args">{esc(args)}</code>' if args else ""),
             esc(p.get("stage")), after or "-",
             f"{fmt(p.get('nodes'))} x {fmt(p.get('gpus'))}", esc(p.get("batch")) or "-", esc(p.get("parallel")) or "-",
             fmt(p.get("hours")), *(fmt(x, 2) for x in fp), _wall(c), "yes" if p.get("cuda") else "no",
             "yes" if p.get("vllm") else "no"],
        ))  # fmt: skip
    if rows and cost:
        total = cost["all"] or (None, None, None)
        rows.append(('class="total"', ["<b>all</b>", "", "", "", "", "", "", *(fmt(x, 2) for x in total),
                     f"{fmt(cost['wall_s'], 1)} s" if cost["wall_s"] is not None else "-", "", ""]))  # fmt: skip
    headers = ["job", "stage", "after", "nodes x gpus", "batch", "parallel", "paper hours", "GPU-h", "kWh", "kg CO2",
               "measured wall", "cuda", "vllm"]  # fmt: skip
    inner = (table(headers, rows, "plan") + _cost_note(cost, profile)) if rows else "<p>No plan in this run.</p>"
    return (
        '<section id="plan"><h2>Plan and cost</h2><p>One job per row, as make smoke / make reproduce planned it, '
        f"with its own arguments.</p>{inner}</section>"
    )


def _wall(c: dict) -> str:
    if c.get("wall_s") is None:
        return "-"
    return f'<span title="{esc(c["folder"])}">{fmt(c["wall_s"], 1)} s</span>'
