"""A recipe run (runs/<recipe>[-<profile>]/), or the evaluations of one model (runs/eval/<model>/, `make eval
MODEL=`), read into one plain dict for the page: the verify tables with Wilson intervals, lm-eval's samples per task,
the judged suites per sample, every Medprompt stage, the diff-eval comparisons of its evaluations, the training
curves, each stage's manifest and each job's plan with its cost. Paths a run records are absolute: a run moved
elsewhere is read where it now lies."""

import math
import re
from pathlib import Path

from data_prep.benchmarks import column_task
from scripts import core
from scripts.core import AloeError, read_json
from scripts.lib import stages
from scripts.lib.manifest import SCHEMA

from . import curves, diffs, ensembles, footprint, samples, stats, tags, verdicts
from .paths import inside, local, shown, slug

SETTINGS = ("lm_eval_version", "model_source", "model_name", "chat_template_sha", "fewshot_as_multiturn",
            "system_instruction", "transformers_version", "total_evaluation_time_seconds")  # fmt: skip
CONFIG = ("model", "model_args", "batch_size", "device", "limit", "gen_kwargs", "random_seed")
FACTS = ("stage", "status", "started", "finished", "wall_s", "git_sha", "seed", "tools", "environment", "launcher",
         "world_size", "micro_batch", "grad_accum", "total_batch", "metrics", "runs")  # fmt: skip
LM_EVAL = stages.spec("eval").outputs["lm_eval"]  # an evaluation stage's lm-eval output folder


def manifests(run: Path) -> dict:
    """{stage folder relative to the run: manifest} of every stage manifest of the run (<stage>/, dpo/NN-*/), in the
    order they ran."""
    found = {}
    for f in sorted([*run.glob("*/manifest.json"), *run.glob("*/*/manifest.json")]):
        m = read_json(f)
        if isinstance(m, dict) and m.get("schema") == SCHEMA:
            found[str(f.parent.relative_to(run))] = m
    return dict(sorted(found.items(), key=lambda kv: (kv[1].get("started") or "", kv[0])))


def _files(node, run: Path, prefix="") -> list:
    """[(name, path, sha256)] of a manifest's inputs or outputs, nested groups (eval fixtures) named a.b."""
    if isinstance(node, dict) and "sha256" in node:
        return [(prefix, shown(node.get("path", ""), run), node["sha256"])]
    if isinstance(node, dict):
        return [x for k, v in node.items() for x in _files(v, run, f"{prefix}.{k}" if prefix else str(k))]
    return []


def stage(folder: str, m: dict, run: Path, sources: dict) -> dict:
    """One stage's provenance as shown; `sources` {recipe file: (hash the plan recorded, hash now)}."""
    recipe = m.get("recipe") or {}
    path = recipe.get("path")
    recorded, now = sources.get(path, (None, None))
    changed = None if not (recorded and now) else recorded != now
    return {
        "id": "stage-" + slug(folder),
        "folder": folder,
        **{k: m.get(k) for k in FACTS},
        "code": m.get("code") or {},
        "inputs": _files(m.get("inputs") or {}, run),
        "outputs": _files(m.get("outputs") or {}, run),
        "recipe": {
            "path": path,
            "profile": recipe.get("profile"),
            "sha256": recipe.get("sha256"),
            "changed": changed,
            "values": tags.tagged(recipe),
            "argv": recipe.get("rendered") if isinstance(recipe.get("rendered"), list) else None,
        },
    }


def plans(run: Path) -> list:
    """Each job's plan, in an order where every job follows the jobs it waits for."""
    jobs = {f.stem: read_json(f) for f in sorted((run / "plan").glob("*.json"))}
    depth = {}

    def level(name, seen=()):
        if name not in depth:
            after = [a for a in (jobs[name].get("job") or {}).get("after") or [] if a in jobs and a not in seen]
            depth[name] = 1 + max((level(a, (*seen, name)) for a in after), default=0)
        return depth[name]

    return [jobs[n] for n in sorted(jobs, key=lambda n: (level(n), n))]


def evaluations(run: Path, named: set, model_eval: bool) -> list:
    """Every lm-eval evaluation folder (eval-<suite>/ of a run, <suite>/ of a model's evaluations) with its lm-eval
    output: its results file (the one verify read where it is there), the settings that make numbers differ between
    harness runs, and its samples per task."""
    folders = sorted(p for p in run.iterdir() if p.is_dir()) if model_eval else sorted(run.glob("eval-*"))
    out = []
    for folder in folders:
        read_by_verify = [n for n in named if Path(n).is_relative_to(folder)]
        results = samples.results_file(folder / LM_EVAL, read_by_verify[0] if read_by_verify else None)
        if not results:
            continue
        r = read_json(results)
        config = r.get("config") or {}
        settings = {**{k: r.get(k) for k in SETTINGS}, **{k: config.get(k) for k in CONFIG},
                    "n-shot": sorted({str(v) for v in (r.get("n-shot") or {}).values()})}  # fmt: skip
        tasks = samples.read(samples.sample_files(results))
        for t in tasks.values():
            t["file"] = shown(t["file"], run)
        out.append({"folder": folder.name, "results": shown(results, run), "settings": settings, "tasks": tasks})
    return out


def judged_suites(run: Path, ms: dict) -> list:
    """The judged suites' stages (safety, openmedqa, fields) per sample."""
    found = (verdicts.read(run / f, m["stage"], f) for f, m in ms.items() if m.get("stage") in verdicts.FILES)
    return [s for s in found if s]


def medprompts(run: Path, ms: dict) -> list:
    out = []
    for folder, m in ms.items():
        if m.get("stage") == "medprompt":
            q = ((m.get("inputs") or {}).get("questions") or {}).get("path")
            read = ensembles.read(run / folder, local(q, run) if q else None, folder)
            out.append({"id": "ensemble-" + slug(folder), **read})
    return out


def counts(evals: list) -> dict:
    """{task: (correct, questions)} of every 0/1-scored task with samples."""
    out = {}
    for e in evals:
        for task, t in e["tasks"].items():
            scored = [r["correct"] for r in t["rows"] if r["correct"] is not None]
            if scored:
                out[task] = (sum(scored), len(scored))
    return out


def verify_files(folder: Path, run: Path | None = None) -> list:
    """[(file, table)] of each verify.json under `folder` (one per table), the top one first; with `run`, only the
    tables that measured results inside it."""
    out = []
    for f in sorted(Path(folder).rglob("verify.json"), key=lambda f: (len(f.parts), f)):
        t = read_json(f)
        if not isinstance(t, dict) or not isinstance(t.get("rows"), list):
            raise AloeError("no `rows` list: not a verify table", file=f)
        if run is None or any(inside(x, run) for x in _measured(t) if x):
            out.append((f, t))
    return out


def _measured(t: dict) -> list:
    """The results a verify table read ("a, b; baseline c": a and b)."""
    return str(t.get("results", "")).split("; baseline ")[0].split(", ")


def verify_tables(run: Path, root: Path, found: list, evals: list, mps: list, suites: list) -> list:
    """The verify tables (`found`, their ids relative to `root`) with, per row: n, the Wilson interval on the table's
    scale (0-100, or 0-1) and the anchor of its samples (with the filter that shows them)."""
    lm_counts = stats.intervals({**counts(evals), **{t: c for s in suites for t, c in s["counts"].items()}})
    lm_links = {task: ("samples-" + slug(task), None) for e in evals for task in e["tasks"]}
    lm_links |= {t: (s["id"], s["selects"].get(t)) for s in suites for t in s["counts"]}
    mp_counts = stats.intervals({m["dataset"]: (m["k"], m["n"]) for m in mps})
    mp_links = {m["dataset"]: (m["id"], None) for m in mps}
    out = []
    for f, t in found:
        medprompt = t.get("setting") == "medprompt"
        cis, links = (mp_counts, mp_links) if medprompt else (lm_counts, lm_links)
        top = stats.top_of(x for r in t["rows"] for x in (r.get("reported"), r.get("measured")) if _number(x))
        rows = []
        for r in t["rows"]:
            task = column_task(str(r.get("task")))
            link, select = links.get(task) or ("samples" if task in cis and not medprompt else None, None)
            c = cis.get(task) or {"k": None, "n": None, "ci": None}
            ci = stats.scaled(c["ci"], top) if math.isfinite(top) else None
            rows.append({**r, **c, "ci": ci, "link": link, "select": select})
        results = ", ".join(shown(x, run) for x in _measured(t))
        out.append({**t, "id": "table-" + slug(f.parent.relative_to(root)), "file": shown(f, run), "results": results,
                    "rows": rows, "top": top})  # fmt: skip
    return out


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def curve_data(run: Path, ms: dict, dpo_step: re.Pattern) -> dict:
    """{"sft": curve or None, "dpo": [(run name, curve)]}."""
    sft = next(((f, m) for f, m in ms.items() if m.get("stage") == "sft"), (None, None))
    dpo = [(Path(f).name, curves.dpo_run(run / f, m, dpo_step)) for f, m in ms.items() if m.get("stage") == "dpo-run"]
    return {"sft": curves.sft(run / sft[0], sft[1]) if sft[0] else None,
            "dpo": sorted((name, c) for name, c in dpo if c)}  # fmt: skip


def collect(path, dpo_step: re.Pattern, *, model_eval=False, verify_root=None, diff_files=(), diff_root=None) -> dict:
    """The whole page's data; `dpo_step` matches one DPO progress-bar step (scripts/lib/openrlhf_log.py's STEP).
    `path`: a recipe run folder, or with `model_eval` a model's evaluations (runs/eval/<model>: no plan, no training;
    its verify tables are those under `verify_root` that measured results in it). `diff_files`: diff-eval JSON files
    to show, with those under `diff_root` (runs/diff-eval) that compared an evaluation in it."""
    run = Path(path).resolve()
    kind, give = ("recipe run folder", "--run runs/<recipe>[-<profile>] (make smoke writes one)")
    if model_eval:
        kind, give = ("model evaluation folder", "--model-eval runs/eval/<model> (make eval MODEL= writes one)")
    if not run.is_dir():
        raise AloeError(f"no {kind} {run}: give {give}")
    ms, ps = manifests(run), [] if model_eval else plans(run)
    if not ms and not ps:
        raise AloeError(
            f"{run}: no stage manifest{'' if model_eval else ' and no plan'} in it: not a {kind}: give {give}"
        )
    root = Path(verify_root) if model_eval else run  # what the tables' ids are relative to
    scan = root if model_eval else run / "verify"
    found = verify_files(scan, run if model_eval else None) if scan.is_dir() else []
    evals = evaluations(run, {str(local(x, run)) for _, t in found for x in _measured(t)}, model_eval)
    suites, mps = judged_suites(run, ms), medprompts(run, ms)
    files = dict.fromkeys(Path(f).resolve() for f in [*diff_files, *(diffs.found(diff_root, run) if diff_root else ())])
    recorded = next((p.get("sources") or {} for p in ps), {})
    sources = {path: (sha, _current(path)) for path, sha in recorded.items()}
    jobs = [p.get("job") or {} for p in ps]
    return {
        "run": run.name,
        "path": str(run),
        "model_eval": model_eval,
        "plan_recipe": next((p.get("recipe") for p in ps), None),
        "sources": [(path, *hashes) for path, hashes in sources.items()],
        "tables": verify_tables(run, root, found, evals, mps, suites),
        "evaluations": evals,
        "judged": suites,
        "medprompt": mps,
        "diffs": [diffs.read(f, run, i) for i, f in enumerate(files)],
        "curves": None if model_eval else curve_data(run, ms, dpo_step),
        "stages": [stage(f, m, run, sources) for f, m in ms.items()],
        "plans": [{"id": "plan-" + slug(j.get("name")), **j} for j in jobs],
        "cost": footprint.costs(jobs, run) if jobs else None,
    }


def _current(path: str) -> str | None:
    f = core.ROOT / path
    return core.sha256_path(f) if f.is_file() else None
