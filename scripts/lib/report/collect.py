"""A recipe run (runs/<recipe>[-<profile>]/) read into one plain dict for the page: the verify tables with Wilson
intervals, lm-eval's samples per task, every Medprompt stage, the training curves, each stage's manifest and each
job's plan. Paths a run records are absolute: a run moved elsewhere is read where it now lies."""

import re
from pathlib import Path

from data_prep.benchmarks import column_task
from scripts import core
from scripts.core import AloeError, read_json
from scripts.lib.manifest import SCHEMA

from . import curves, ensembles, samples, tags
from .stats import intervals

SETTINGS = ("lm_eval_version", "model_source", "model_name", "chat_template_sha", "fewshot_as_multiturn",
            "system_instruction", "transformers_version", "total_evaluation_time_seconds")  # fmt: skip
CONFIG = ("model", "model_args", "batch_size", "device", "limit", "gen_kwargs", "random_seed")
FACTS = ("stage", "status", "started", "finished", "wall_s", "git_sha", "seed", "tools", "environment", "launcher",
         "world_size", "micro_batch", "grad_accum", "total_batch", "metrics", "runs")  # fmt: skip


def slug(text) -> str:
    """A piece of an HTML id: letters, digits, '_', '.' and '-' only."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text))


def local(path, run: Path) -> Path:
    """A path the run recorded, where it lies now: as recorded, else under the run folder (the run was moved)."""
    p = Path(path)
    if p.exists() or run.name not in p.parts:
        return p
    return run.joinpath(*p.parts[len(p.parts) - p.parts[::-1].index(run.name) :])


def shown(path, run: Path) -> str:
    """A path as the page shows it: relative to the run folder where it lies inside it."""
    p = local(path, run)
    return str(p.relative_to(run)) if p.is_relative_to(run) else str(path)


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


def evaluations(run: Path, named: set) -> list:
    """Every lm-eval evaluation folder of the run (eval-<suite>/): its results file (the one verify read where it is
    there), the settings that make numbers differ between harness runs, and its samples per task."""
    out = []
    for folder in sorted(run.glob("eval-*")):
        read_by_verify = [n for n in named if Path(n).is_relative_to(folder)]
        results = samples.results_file(folder, read_by_verify[0] if read_by_verify else None)
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


def verify_files(run: Path) -> list:
    """[(file, table)] of each verify.json under verify/ (one per table), the top one first."""
    out = []
    for f in sorted((run / "verify").rglob("verify.json"), key=lambda f: (len(f.parts), f)):
        t = read_json(f)
        if not isinstance(t, dict) or not isinstance(t.get("rows"), list):
            raise AloeError("no `rows` list: not a verify table", file=f)
        out.append((f, t))
    return out


def verify_tables(run: Path, found: list, evals: list, mps: list) -> list:
    """The verify tables with, per row: n, the Wilson interval and the anchor of its samples."""
    lm_counts = intervals(counts(evals))
    lm_links = {task: "samples-" + slug(task) for e in evals for task in e["tasks"]}
    mp_counts = intervals({m["dataset"]: (m["k"], m["n"]) for m in mps})
    mp_links = {m["dataset"]: m["id"] for m in mps}
    out = []
    for f, t in found:
        medprompt = t.get("setting") == "medprompt"
        cis, links = (mp_counts, mp_links) if medprompt else (lm_counts, lm_links)
        rows = []
        for r in t["rows"]:
            task = column_task(str(r.get("task")))
            link = links.get(task) or ("samples" if task in cis and not medprompt else None)
            rows.append({**r, **(cis.get(task) or {"k": None, "n": None, "ci": None}), "link": link})
        results = ", ".join(shown(x, run) for x in str(t.get("results", "")).split(", "))
        out.append({**t, "id": "table-" + slug(f.parent.relative_to(run)), "file": shown(f, run), "results": results,
                    "rows": rows})  # fmt: skip
    return out


def curve_data(run: Path, ms: dict, dpo_step: re.Pattern) -> dict:
    """{"sft": curve or None, "dpo": [(run name, curve)]}."""
    sft = next(((f, m) for f, m in ms.items() if m.get("stage") == "sft"), (None, None))
    dpo = [(Path(f).name, curves.dpo_run(run / f, m, dpo_step)) for f, m in ms.items() if m.get("stage") == "dpo-run"]
    return {"sft": curves.sft(run / sft[0], sft[1]) if sft[0] else None,
            "dpo": sorted((name, c) for name, c in dpo if c)}  # fmt: skip


def collect(run, dpo_step: re.Pattern) -> dict:
    """The whole page's data; `dpo_step` matches one DPO progress-bar step (scripts/lib/openrlhf_log.py's STEP)."""
    run = Path(run).resolve()
    if not run.is_dir():
        raise AloeError(f"no run folder {run}: give --run runs/<recipe>[-<profile>] (make smoke writes one)")
    ms, ps = manifests(run), plans(run)
    if not ms and not ps:
        raise AloeError(f"{run}: no stage manifest and no plan in it: not a recipe run folder")
    found = verify_files(run)
    evals = evaluations(run, {str(local(t.get("results", ""), run)) for _, t in found})
    mps = medprompts(run, ms)
    recorded = next((p.get("sources") or {} for p in ps), {})
    sources = {path: (sha, _current(path)) for path, sha in recorded.items()}
    return {
        "run": run.name,
        "path": str(run),
        "plan_recipe": next((p.get("recipe") for p in ps), None),
        "sources": [(path, *hashes) for path, hashes in sources.items()],
        "tables": verify_tables(run, found, evals, mps),
        "evaluations": evals,
        "medprompt": mps,
        "curves": curve_data(run, ms, dpo_step),
        "stages": [stage(f, m, run, sources) for f, m in ms.items()],
        "plans": [{"id": "plan-" + slug((p.get("job") or {}).get("name")), **(p.get("job") or {})} for p in ps],
    }


def _current(path: str) -> str | None:
    f = core.ROOT / path
    return core.sha256_path(f) if f.is_file() else None
