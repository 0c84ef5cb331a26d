"""make verify: measured against reported, per task, with tolerances.

Reads lm-eval results (a results_*.json, or a folder holding one) and a reported table
(results/reported.yaml), computes the paper's aggregates from the measured tasks, and for every number
the paper reports for that model: the delta, a tolerance = max(floor, Z x measured standard error), and
pass or fail. The floor (1 point for accuracies) absorbs what the paper cannot pin down: hardware,
batch size and library versions. Prints a table, writes report.md, verify.json and chart.png (reported
against measured, with 95% intervals that stay within the table's scale: Wilson's where the number of questions is
known, else the harness's stderr clipped) under results/verify/<model>/, and exits 1 when a number is out
of tolerance. A column the table names `not_comparable` shows its measured number and the reason, never a pass
or a fail. A suite's default tables: mcqa -> table9, open -> table11a, table11b, table12, safety -> table13,
table14 (S-Eval ASR from scripts/safety.py), openmedqa -> pcr_table5 (scripts/openmedqa.py), fields -> table10
(accuracy by medical field, field_<field> results of scripts/fields.py); the judged stages write lm-eval's results
shape.

Calibrated (--baseline <instruct model>): also the gain over the baseline, per column: reported gain (the paper's
two numbers) against measured gain (both models measured here), tolerance = max(floor, Z x sqrt(se_model^2 +
se_baseline^2)). A harness offset common to both models cancels in the gain, so with --baseline the exit status
follows the gain verdicts; the absolute verdicts are still printed beside them.

  python -m scripts.verify --model HPAI-BSC/Llama3.1-Aloe-Beta-8B --results runs/eval/<model>/lm_eval
  python -m scripts.verify --model HPAI-BSC/Llama3.1-Aloe-Beta-8B --setting medprompt --medprompt runs/*/medprompt-*
  python -m scripts.verify --profile cpu-tiny --reported results/tiny_expected.yaml --table fixture --model tiny
  python -m scripts.verify --model HPAI-BSC/Llama3.1-Aloe-Beta-8B --baseline meta-llama/Llama-3.1-8B-Instruct
"""

import argparse
import json
import math
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import yaml

from evals.aggregates import (
    NEEDS,
    Score,
    VerifyError,
    load_results,
    measured_scores,
    task_metrics,
    with_aggregates,
)
from scripts import core
from scripts.core import markdown, table
from scripts.lib import cli, stages
from scripts.lib import manifest as mf
from scripts.lib.report import stats

Z = 1.96
REPORTED = core.ROOT / "results" / "reported.yaml"
SUITE_TABLES = {
    "mcqa": ["table9", "leaderboard"],
    "open": ["table11a", "table11b", "table12"],
    "safety": ["table13", "table14"],
    "openmedqa": ["pcr_table5"],
    "fields": ["table10"],
    "general": [],
}  # the model cards' general-domain numbers are not transcribed
HEADERS = ["column", "task", "reported", "measured", "stderr", "delta", "tolerance", "result"]
GAIN_HEADERS = ["reported gain", "measured gain", "gain tolerance", "gain result"]


def medprompt_scores(paths: list) -> dict:
    """In-context rows: per-dataset accuracy (x100) from medprompt/ evaluation.json files (or folders)."""
    out = {}
    for p in map(Path, paths):
        done = (p / "manifest.json").is_file()  # a stage folder: its evaluation output
        f = mf.results(p, "verify") if done else p / "evaluation.json" if p.is_dir() else p
        try:
            ev = json.loads(f.read_text())
        except (FileNotFoundError, json.JSONDecodeError) as e:
            raise VerifyError(f"verify: cannot read Medprompt evaluation {f}: {e}")
        n, acc = ev["questions"], ev["accuracy"]
        out[ev["dataset"]] = Score(100 * acc, 100 * math.sqrt(acc * (1 - acc) / max(n - 1, 1)), n)
    return out


def reported_name(reported: dict, model: str) -> str:
    """The name a model is reported under: its alias in `models`, else the last part of its hub id."""
    aliases = {v: k for k, v in (reported.get("models") or {}).items()}
    return aliases.get(model, model.rstrip("/").split("/")[-1])


def reporting(reported: dict, tables: list, setting: str, model: str) -> list:
    """The tables among these that report the model under the setting (all of them when none does, so that the
    error names what is known): table9 for the Aloe Beta models, the leaderboard for the Alpha."""
    name = reported_name(reported, model)
    found = [t for t in tables if name in ((reported["tables"].get(t) or {}).get("settings", {}).get(setting) or {})]
    return found or tables


def reported_row(reported: dict, table: str, setting: str, model: str):
    tables = reported.get("tables", {})
    if table not in tables:
        raise VerifyError(f"verify: table {table!r} not in the reported file; known: {sorted(tables)}")
    t = tables[table]
    if "measure" not in t:
        raise VerifyError(f"verify: table {table!r} ({t.get('source')}) is not measured by this repository")
    rows = t["settings"].get(setting)
    if rows is None:
        raise VerifyError(f"verify: setting {setting!r} not in {table}; known: {sorted(t['settings'])}")
    unknown = sorted(set(t.get("not_comparable") or {}) - set(t["columns"]))
    if unknown:
        raise VerifyError(f"verify: {table} not_comparable names no column of it: {', '.join(unknown)}")
    name = reported_name(reported, model)
    if name not in rows:
        raise VerifyError(f"verify: {table} {setting} reports no model {name!r}; known: {sorted(rows)}")
    return name, t, rows[name]


def compare(reported_values: dict, measure: dict, scores: dict, floor: float, z: float, source: str, apart=()):
    """Rows [column, task, reported, measured, stderr, delta, tolerance, ok]; errors for missing tasks. A column
    apart (not comparable) has ok None and may lack its task."""
    rows, missing = [], []
    for col, rep in reported_values.items():
        if rep is None:
            continue
        task = measure["task"].format(col=col)
        if task not in scores and col not in apart:
            needed = [t for t in NEEDS.get(col, [task]) if t not in scores]
            missing.append(f"{col} (needs {', '.join(needed)})")
            continue
        s, decided = scores.get(task, Score(None)), col not in apart
        tol = max(floor, z * s.stderr) if s.stderr is not None else floor
        if s.value is None:  # e.g. no verdict of the judge parsed: nothing reproduces
            rows.append([col, task, rep, None, None, None, round(tol, 3), False if decided else None])
            continue
        delta = s.value - rep
        rows.append(
            [
                col,
                task,
                rep,
                round(s.value, 3),
                None if s.stderr is None else round(s.stderr, 3),
                round(delta, 3),
                round(tol, 3),
                abs(delta) <= tol if decided else None,
            ]
        )
    if missing:
        raise VerifyError(f"verify: {source} lacks results for: {'; '.join(missing)}")
    return rows


PROPORTIONS = ("acc", "acc_norm", "asr", "exact_match")  # metrics right or wrong per question: Wilson applies


def error_bars(rows: list, scores: dict, metric: str, metrics: dict | None = None) -> list:
    """Each row's 95% interval (low, high) as the chart draws it, never outside the table's scale (0-100, 0-1 for a
    table in 0-1, report/stats.py top_of): Wilson's from the measured proportion and its number of questions
    (lm-eval's n-samples; an aggregate at its effective size, as the report computes it), else the harness's stderr
    clipped to the scale; None without a measured number."""
    top = stats.top_of(x for r in rows for x in (r[2], r[3]))
    counts = {
        t: (s.value / top * s.n, s.n)
        for t, s in scores.items()
        if t not in NEEDS
        and s.n
        and s.value is not None
        and 0 <= s.value <= top
        and (metrics or {}).get(t, metric) in PROPORTIONS
    }
    cis = stats.intervals(counts) if math.isfinite(top) else {}
    out = []
    for _, task, _, measured, stderr, *_ in rows:
        ci = stats.scaled((cis.get(task) or {}).get("ci"), top)
        if measured is None or ci:
            out.append(ci)
        else:
            out.append(stats.clipped(measured, stderr, top) if stderr is not None else (measured, measured))
    return out


def chart(rows, bars, title, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [r[0] for r in rows]
    x = range(len(cols))
    below = [max(0.0, r[3] - b[0]) if b else 0 for r, b in zip(rows, bars, strict=True)]
    above = [max(0.0, b[1] - r[3]) if b else 0 for r, b in zip(rows, bars, strict=True)]
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(cols) + 2), 4))
    ax.bar([i - 0.2 for i in x], [r[2] for r in rows], 0.4, label="reported", color="#9db4d6")
    ax.bar(
        [i + 0.2 for i in x],
        [r[3] or 0 for r in rows],
        0.4,
        yerr=[below, above],
        capsize=4,
        label="measured (95% CI)",
        color=["#999999" if r[7] is None else "#4c9a5b" if r[7] else "#c0504d" for r in rows],
    )
    ax.set_xticks(list(x), cols, rotation=30, ha="right")
    ax.set_title(textwrap.fill(title, 70), fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def gains(rows: list, base_rows: list, scores: dict, base_scores: dict, floor: float, z: float) -> list:
    """Per column of rows: [reported gain, measured gain, tolerance, ok] against the baseline's row."""
    base = {x[0]: x for x in base_rows}
    out = []
    for col, task, rep, meas, *_ in rows:
        b = base.get(col)
        if b is None or meas is None or b[3] is None:
            out.append([None if b is None else round(rep - b[2], 3), None, None, False])
            continue
        se = [scores[task].stderr, base_scores[task].stderr]
        tol = max(floor, z * math.sqrt(sum(x**2 for x in se))) if None not in se else floor
        rep_gain, meas_gain = rep - b[2], scores[task].value - base_scores[task].value
        out.append([round(rep_gain, 3), round(meas_gain, 3), round(tol, 3), abs(meas_gain - rep_gain) <= tol])
    return out


@dataclass(frozen=True)
class Options:
    """How one table is checked (from the command line)."""

    setting: str  # 0-shot, medprompt, ...: the reported row's setting
    floor: float | None  # tolerance floor (None: the table's)
    z: float | None  # standard errors of tolerance (None: the table's z, else Z)
    medprompt: list | None  # Medprompt evaluations that fill the in-context rows
    baseline: str | None  # the base Instruct model whose gain is checked


def results_of(runs, run: str, suite: str, model: str | None, explicit: str | None, own_only=False) -> Path:
    """The results to read: given, else `make eval MODEL=` results of this model, else (not for a baseline,
    own_only) the recipe run's own."""
    if explicit:
        return Path(explicit)
    own = stages.model_eval_dir(runs, model, suite) if model else None
    if own_only and not (own and own.exists()):
        raise VerifyError(f"verify: no results of {model} for suite {suite} ({own}): `make eval MODEL={model}` first")
    folder = own if own and own.exists() else stages.folder(stages.suite_stage(suite), runs, run, suite=suite)
    return mf.results(folder, "verify")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="reported model name or hub id (default: the recipe's released_as)")
    ap.add_argument("--results", help="lm-eval results JSON or folder (default: the recipe run's eval stage)")
    ap.add_argument("--baseline", help="reported name or hub id of the base Instruct model: also check the gain")
    ap.add_argument("--baseline-results", help="the baseline's results (default: its `make eval MODEL=` stage)")
    ap.add_argument("--recipe", default="recipes/aloe-beta-8b")
    ap.add_argument("--profile")
    ap.add_argument("--runs", default=str(core.ROOT / "runs"))
    ap.add_argument("--plan", help="the verify job's rendered plan (make reproduce / make smoke)")
    ap.add_argument("--reported", default=str(REPORTED), help="reported numbers (default results/reported.yaml)")
    ap.add_argument("--suite", default="mcqa", help="which eval stage of the recipe run to read (default mcqa)")
    ap.add_argument(
        "--table",
        help="comma-separated tables (default: those of the suite that report the model; "
        "mcqa: table9, or the leaderboard for the Alpha)",
    )
    ap.add_argument("--setting", default="0-shot")
    ap.add_argument(
        "--medprompt",
        nargs="+",
        help="Medprompt evaluation.json files or stage folders: fill the "
        "in-context rows (use with --setting medprompt)",
    )
    ap.add_argument("--floor", type=float, help="tolerance floor (default: the table's)")
    ap.add_argument("--z", type=float, help=f"standard errors of tolerance (default: the table's z, else {Z})")
    ap.add_argument(
        "--out",
        help="report folder (default results/verify/<model>-<table>-<setting>; with several "
        "tables, one subfolder each)",
    )
    a = ap.parse_args(argv)
    if a.baseline and a.medprompt:
        raise VerifyError("verify: --baseline compares lm-eval-shaped results; Medprompt rows have no baseline row")
    r, runs = cli.load(a.recipe, a.profile, runs=a.runs, plan=a.plan)
    model = a.model or r.files["recipe"]["released_as"]
    reported = yaml.safe_load(Path(a.reported).read_text())
    if a.medprompt:
        results = {"_path": ", ".join(a.medprompt)}
    else:
        results = load_results(results_of(runs, r.name, a.suite, a.model, a.results))
    base_results = (
        load_results(results_of(runs, r.name, a.suite, a.baseline, a.baseline_results, own_only=True))
        if a.baseline
        else None
    )
    tables = (
        a.table.split(",") if a.table else reporting(reported, SUITE_TABLES.get(a.suite, ["table9"]), a.setting, model)
    )
    if not tables:
        raise VerifyError(f"verify: no reported table for suite {a.suite!r} (see the README's table of every table)")
    failed, o = 0, Options(a.setting, a.floor, a.z, a.medprompt, a.baseline)
    for t in tables:
        out = Path(a.out) / t if a.out and len(tables) > 1 else a.out
        failed += verify_table(o, reported, t, model, results, base_results, out)
    return 1 if failed else 0


def scores_of(results: dict, measure: dict, medprompt=None) -> dict:
    if medprompt:
        return with_aggregates(medprompt_scores(medprompt))
    return with_aggregates(measured_scores(results, measure["metric"], measure["scale"], task_metrics(measure)))


def verify_table(o: Options, reported, table_name, model, results, base_results, out) -> int:
    """Print, report and chart one table; returns how many verdicts that decide the exit status failed."""
    name, tab, row = reported_row(reported, table_name, o.setting, model)
    measure = tab["measure"]
    floor = o.floor if o.floor is not None else measure["floor"]
    z = o.z if o.z is not None else measure.get("z", Z)
    scores = scores_of(results, measure, o.medprompt)
    apart = tab.get("not_comparable") or {}  # column -> why: shown, never decided
    rows = compare(row, measure, scores, floor, z, results["_path"], apart)
    headers, shown = (
        list(HEADERS),
        [[*x[:7], apart.get(x[0]) or ("pass" if x[7] else "FAIL" if x[3] is not None else "FAIL (no score)")]
         for x in rows],
    )  # fmt: skip
    decide = [x[7] for x in rows if x[0] not in apart]
    title = f"{name}: {tab['source']}, {o.setting}"
    note = f"tolerance = max(floor {floor:g}, {z:g} x measured stderr)"
    if base_results is not None:
        base_name, _, base_row = reported_row(reported, table_name, o.setting, o.baseline)
        base_scores = scores_of(base_results, measure)
        base_rows = compare(
            {c: v for c, v in base_row.items() if c in row}, measure, base_scores, floor, z, base_results["_path"],
            apart,
        )  # fmt: skip
        g = gains(rows, base_rows, scores, base_scores, floor, z)
        headers += GAIN_HEADERS
        shown = [[*x, *y[:3], apart.get(x[0]) or ("pass" if y[3] else "FAIL")] for x, y in zip(shown, g, strict=True)]
        decide = [y[3] for x, y in zip(rows, g, strict=True) if x[0] not in apart]
        title += f"; gain over {base_name}"
        note += (
            f"; gain tolerance = max(floor {floor:g}, {z:g} x sqrt(se^2 + baseline se^2)); "
            "the exit status follows the gain"
        )
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    out = Path(out or core.ROOT / "results" / "verify" / f"{slug}-{table_name}-{o.setting}")
    out.mkdir(parents=True, exist_ok=True)
    n_fail, n_apart = sum(not ok for ok in decide), len(rows) - len(decide)
    what = "gains " if base_results is not None else ""
    summary = f"{len(decide) - n_fail} of {len(decide)} {what}within tolerance" + (f"; {n_fail} FAIL" if n_fail else "")
    summary += f"; {n_apart} not comparable" if n_apart else ""
    measured = results["_path"] + (f"; baseline {base_results['_path']}" if base_results is not None else "")
    print(f"\n{title}\nmeasured: {measured}\n")
    print(table(headers, shown))
    print(f"\n{summary}  ({note}); report: {out}")
    (out / "report.md").write_text(
        f"# {title}\n\nMeasured: `{measured}`\n\n{markdown(headers, shown)}\n\n"
        f"{summary} ({note})\n\n![reported vs measured](chart.png)\n"
    )
    rows_json = [dict(zip(headers, x, strict=True)) for x in shown]
    (out / "verify.json").write_text(
        json.dumps(
            {
                "model": name,
                "table": table_name,
                "setting": o.setting,
                "baseline": o.baseline,
                "results": measured,
                "rows": rows_json,
            },
            indent=2,
        )
    )
    chart(rows, error_bars(rows, scores, measure["metric"], task_metrics(measure)), title, out / "chart.png")
    return n_fail


if __name__ == "__main__":
    sys.exit(cli.edge(main))
