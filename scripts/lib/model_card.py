"""The model card of a recipe run's final model, and the hub's evaluation metadata, read from the run's own records.

Nothing is recomputed: the final model comes from its stage manifest (stages.FINAL_MODEL); the recipe as planned from
the run's plan (as written and as run, each value with the [P]/[D]/[C] tag and note of its line's comment); the bases
and the merge partner from the sft and merge manifests; the data sources and the hashes of the files trained on from
the data, sft and DPO manifests; every stage's environment lock, tools and code hash from its manifest; the verify
tables from verify/**/verify.json, each checked to have measured this final model.

Each measured column becomes a model-index result of the card's YAML (huggingface_hub EvalResult, verified: false). A
column measured on a benchmark's whole hub dataset also becomes an entry of the hub's newer `.eval_results/*.yaml`
(EvalResultEntry; dataset id = the benchmark's hub id, task id = its config); one measured on a local fixture, on a
LIMIT= subset or an aggregate names no hub dataset, so it never reaches a benchmark's leaderboard. `validate` reads
what was written back with huggingface_hub's own parsers (offline: it never asks the hub).
"""

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from huggingface_hub import (
    EvalResult,
    EvalResultEntry,
    ModelCard,
    ModelCardData,
    eval_result_entries_to_yaml,
    parse_eval_result_entries,
)
from huggingface_hub.repocard import metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results

from data_prep.benchmarks import SOURCES, column_task
from evals.aggregates import task_metrics
from scripts.core import ROOT, AloeError, read_json, sha256_path

from . import manifest as mf
from . import recipe as rc
from . import recipe_tags, stages
from .values import flatten

RELEASE = "release"  # runs/<run>/release: the final model's files (hard links), its card and metadata
EVAL_RESULTS = ".eval_results/aloe-repro.yaml"  # the hub's per-repository results folder (its EVAL_RESULTS_FOLDER)
# lm-eval's metric -> (hub metric id, its name); a metric not listed keeps its lm-eval name
METRICS = {"acc": ("accuracy", "accuracy"), "rouge1": ("rouge", "ROUGE-1"),
           "word_perplexity": ("perplexity", "word perplexity"), "asr": ("asr", "attack success rate")}  # fmt: skip
# the hub task of a column: lm-eval's output_type where its results name one, else the stage that measured it
OUTPUT_TASK = {"multiple_choice": "multiple-choice", "generate_until": "text-generation",
               "loglikelihood_rolling": "text-generation"}  # fmt: skip
STAGE_TASK = {"eval": "multiple-choice", "medprompt": "multiple-choice", "fields": "multiple-choice",
              "openmedqa": "question-answering", "safety": "text-generation"}  # fmt: skip
# what markdown reads inside a line: emphasis (an underscore inside a word is not), code, links, HTML, entities,
# strikethrough, math, escapes, a table's cell separator, a line break, and spaces it would trim
INLINE = re.compile(r"[*`\[\]<|~$\\\r\n]|&[#\w]+;|(?:^|\W)_|_(?:\W|$)|^\s|\s$")


@dataclass(frozen=True)
class Measured:
    """One measured column, as the card and the hub's metadata state it."""

    column: str  # verify's column
    name: str  # its name in the reported table
    setting: str  # 0-shot, medprompt, ...
    value: float  # as verify measured it (accuracy in %)
    metric: str  # hub metric id
    metric_name: str
    task_type: str  # hub task id
    dataset: str  # the benchmark's hub id; else the column's task (a fixture, a subset, an aggregate)
    dataset_name: str
    config: str | None
    split: str | None
    on_hub: bool  # the benchmark's whole hub dataset: also an .eval_results entry
    date: str | None  # when the measuring stage finished
    source: str  # the results it was read from, relative to the runs root

    def result(self) -> EvalResult:
        return EvalResult(
            task_type=self.task_type, dataset_type=self.dataset, dataset_name=self.dataset_name,
            metric_type=self.metric, metric_value=self.value, dataset_config=self.config, dataset_split=self.split,
            metric_name=f"{self.metric_name} ({self.setting})", verified=False,
        )  # fmt: skip

    def entry(self, run: str) -> EvalResultEntry:
        return EvalResultEntry(
            dataset_id=self.dataset, task_id=self.config or "default", value=self.value, date=self.date,
            notes=f"{self.setting}, {self.metric_name}; aloe-repro run {run}",
        )  # fmt: skip


@dataclass
class Card:
    run: Path  # the recipe run's folder
    readme: str
    metadata: dict  # the README's YAML block
    results: list  # [Measured]
    eval_results: str | None  # the .eval_results YAML (None: no column measured on a whole hub benchmark)
    model: dict  # the final model output {path, sha256}
    manifest: dict  # its manifest {path, key}


def md(value) -> str:
    """A value as literal markdown inline text (a table cell, a title): as is when no character of it means anything
    there, else one code span (its pipes escaped for the table, its line breaks shown as \\n)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if not INLINE.search(text):
        return text
    text = text.replace("\r", "\\r").replace("\n", "\\n").replace("|", "\\|")
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


def table(headers, rows) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(out + ["| " + " | ".join("-" if c is None else md(c) for c in r) + " |" for r in rows])


def rel(path, run: Path):
    """A path as the card shows it: relative to the runs root, else to the repository, when inside it; any other
    value as it is."""
    if not isinstance(path, (str, Path)) or not Path(path).is_absolute():
        return path
    p = Path(path)
    return str(next((p.relative_to(r) for r in (run.parent, ROOT) if p.is_relative_to(r)), p))


def is_hub(ref) -> bool:
    """A hub id (owner/name), not a local path."""
    return isinstance(ref, str) and bool(mf.HUB_ID.fullmatch(ref)) and ".." not in ref and not Path(ref).exists()


def final_model(run: Path) -> tuple[dict, Path, dict]:
    """(the final model output {path, sha256}, its manifest's path, the manifest) of a recipe run."""
    stage, key = stages.FINAL_MODEL
    folder = stages.folder(stage, run.parent, run.name)
    m = mf.read_done(folder, "export")
    if key not in m["outputs"]:
        raise AloeError(f"no {key!r} output: rerun that stage", file=folder / "manifest.json")
    return m["outputs"][key], folder / "manifest.json", m


def plans(run: Path) -> list:
    return [read_json(f) for f in sorted((run.parent / stages.PLAN_FOLDER.format(run=run.name)).glob("*.json"))]


def planned(run: Path, manifest: Path, m: dict) -> dict:
    """{dir, profile, raw, files, sources}: the recipe as the plan of the final model's job recorded it (sources:
    {file: sha256} it was rendered from); for a run whose stages ran one by one (no plan), the files now (sources None)."""
    ps = plans(run)
    own = [p for p in ps if (p.get("job") or {}).get("folder") == str(manifest.parent)] or ps
    if own:
        p = own[-1]
        return {"dir": ROOT / p["recipe"]["dir"], "profile": p["recipe"]["profile"], "raw": p["raw"],
                "files": p["files"], "sources": p["sources"]}  # fmt: skip
    kit = stages.folder("tiny-kit", run.parent, "")
    r = rc.load(ROOT / Path(m["recipe"]["path"]).parent, m["recipe"]["profile"], kit=kit)
    return {"dir": r.path, "profile": r.profile, "raw": r.raw, "files": r.files, "sources": None}


def recipe_rows(rec: dict, stem: str, run: Path) -> tuple[list, str]:
    """([key, as written, as run (where the profile changed it), tag, note] of one recipe file, a remark on where its
    tags were read)."""
    path = Path(rec["dir"]) / f"{stem}.yaml"
    name = str(path.resolve().relative_to(ROOT)) if path.resolve().is_relative_to(ROOT) else str(path.resolve())
    try:
        notes, remark = recipe_tags.comments(path.read_text()), ""
    except (OSError, yaml.YAMLError) as e:
        notes, remark = {}, f"no tags: {path.name} does not read ({e.__class__.__name__})"
    if not remark and rec["sources"] is None:
        remark = "tags read from the file as it is now (no plan recorded its hash)"
    elif not remark and rec["sources"].get(name) != sha256_path(path):
        remark = "tags read from the file as it is now: it was edited after the run was planned"
    written, ran = flatten(rec["raw"].get(stem) or {}), flatten(rec["files"].get(stem) or {})
    rows = []
    for key in [*written, *(k for k in ran if k not in written)]:
        a, b = written.get(key, "(added by the profile)"), ran.get(key, "(removed by the profile)")
        rows.append([key, a, "" if a == b else rel(b, run), *notes.get(key, (None, ""))])
    return rows, remark


def read_stage(run: Path, stage: str) -> dict:
    return mf.read(stages.folder(stage, run.parent, run.name)) or {}


def models(run: Path, rec: dict) -> tuple[list, list]:
    """([role, as written, as run, sha256] of the models the final one comes from, the hub ids among them)."""
    sft, merge, rows = read_stage(run, "sft"), read_stage(run, "merge"), []
    if sft:
        ran = sft["recipe"]["rendered"].get("base_model")
        rows.append(
            ["SFT base", rec["raw"]["sft"].get("base_model"), ran, sft["inputs"].get("base_model", {}).get("sha256")]
        )
    if merge:
        written, ran = rec["raw"]["merge"], merge["recipe"]["rendered"]
        sha = {i["path"]: i["sha256"] for i in merge["inputs"].values()}
        rows.append(["merge base", written.get("base_model"), ran.get("base_model"), sha.get(ran.get("base_model"))])
        for a, b in zip(written.get("models") or [], ran.get("models") or []):
            role = "merged: the SFT output" if str(a["model"]).startswith("@") else "merge partner"
            rows.append([role, a["model"], b["model"], sha.get(b["model"])])
    hub = [r[2] for r in rows if r[0] != "merged: the SFT output" and is_hub(r[2])]
    return [[a, b, rel(c, run), d] for a, b, c, d in rows], list(dict.fromkeys(hub))


def data(run: Path, final: dict) -> tuple[dict, list, list, list]:
    """(the data stage's settings, [source, read from, config, split, revision], [stage, input, path, sha256] of the
    files trained on, the hub datasets read)."""
    d = read_stage(run, "data")
    read_from = (d.get("metrics") or {}).get("read_from") or {}
    sources = [[name, w.get("dataset") or rel(w.get("file"), run), w.get("config"), w.get("split"), w.get("revision")]
               for name, w in read_from.items()]  # fmt: skip
    trained = [[m["stage"], name, rel(i["path"], run), i["sha256"]]
               for m in (read_stage(run, "sft"), final) if m
               for name, i in m["inputs"].items() if name not in ("model", "base_model")]  # fmt: skip
    hub = [w["dataset"] for w in read_from.values() if is_hub(w.get("dataset"))]
    return (d.get("recipe") or {}).get("rendered") or {}, sources, trained, list(dict.fromkeys(hub))


def provenance(run: Path) -> list:
    """[folder, stage, environment locks, tools, code sha256, manifest key, wall s] of every stage of the run."""
    found = [f for f in (*run.glob("*/manifest.json"), *run.glob("*/*/manifest.json"))
             if not any(p.startswith(".") or p.startswith(RELEASE) for p in f.relative_to(run).parts)]  # fmt: skip
    ms = sorted(((read_json(f), f) for f in found), key=lambda x: (x[0].get("started") or "", str(x[1])))
    return [[rel(f.parent, run), m.get("stage"), ", ".join(f"{e} {s}" for e, s in (m.get("environment") or {}).items()),
             ", ".join(f"{k} {v}" for k, v in (m.get("tools") or {}).items() if v), (m.get("code") or {}).get("sha256"),
             m.get("key"), m.get("wall_s")] for m, f in ms]  # fmt: skip


def reported_file(run: Path, default: Path) -> Path:
    """The reported numbers the run's verify job read (its plan's --reported), else `default`."""
    for p in plans(run):
        job = p.get("job") or {}
        if job.get("stage") == "verify" and "--reported" in job.get("args", []):
            return Path(job["args"][job["args"].index("--reported") + 1])
    return default


def measuring_stage(run: Path, results: str, model: dict, where: Path) -> tuple[Path, dict]:
    """(the stage folder, its manifest) that wrote `results`, if it measured this final model and still holds them."""
    p = Path(results)
    folder = next((d for d in (p, *p.parents) if d.is_relative_to(run) and (d / "manifest.json").is_file()), None)
    if folder is None or not p.exists():
        raise AloeError(f"{results} is not a stage output of {run} (or is gone): rerun verify", file=where)
    m = mf.read_done(folder, "export")
    if (m["inputs"].get("model") or {}).get("sha256") != model["sha256"]:
        raise AloeError(f"{rel(folder, run)} measured another model than the final {rel(model['path'], run)} "
                        "(its manifest's model sha256 differs): rerun that evaluation and verify", file=where)  # fmt: skip
    return folder, m


def measured(run: Path, model: dict, reported: Path) -> tuple[list, list]:
    """([Measured] of every verify table's measured columns, [(verify.json, its content)])."""
    found, verified = {}, [(f, read_json(f)) for f in sorted((run / "verify").rglob("verify.json"))]
    reported = reported_file(run, reported)
    try:
        tables = (yaml.safe_load(reported.read_text()) or {}).get("tables") or {} if verified else {}
    except (OSError, yaml.YAMLError) as e:
        raise AloeError(
            f"the reported numbers of the verify tables do not read ({e.__class__.__name__})", file=reported
        )
    for f, v in verified:
        if v.get("table") not in tables or "measure" not in tables[v["table"]]:
            raise AloeError(f"table {v.get('table')!r} is not a measured table of {reported}", file=f)
        tab = tables[v["table"]]
        own = task_metrics(tab["measure"])  # a column's own metric (Table 11's accuracies), else the table's
        by_task = {}  # column task -> (its stage's manifest, lm-eval's config of it or None, the results read)
        for results in str(v.get("results")).split("; baseline ")[0].split(", "):
            m = measuring_stage(run, results, model, f)[1]
            configs = (read_json(results).get("configs") or {}) if Path(results).is_file() else {}
            by_task |= {column_task(t): (m, c, results) for t, c in configs.items()}
            if m["stage"] == "medprompt":
                by_task[m["recipe"]["rendered"].get("dataset")] = (m, None, results)
            by_task.setdefault("", (m, None, results))  # an aggregate's stage
        for row in v.get("rows") or []:
            if row.get("measured") is None:
                continue
            m, cfg, results = by_task.get(row["task"], by_task[""])
            metric = own.get(row["task"], tab["measure"]["metric"])
            x = _measured(row, tab, v["setting"], m, cfg, METRICS.get(metric, (metric, metric)), rel(results, run))
            key = (x.column, x.setting, x.metric)
            if key in found and found[key].value != x.value:
                raise AloeError(f"{x.column} ({x.setting}) measured twice with different values: "
                                f"{found[key].value} and {x.value}; rerun verify", file=f)  # fmt: skip
            found.setdefault(key, x)
    return list(found.values()), verified


def _measured(row: dict, tab: dict, setting: str, m: dict, cfg: dict | None, metric: tuple, source: str) -> Measured:
    task, rendered = row["task"], m["recipe"]["rendered"]
    if cfg:
        hub, config, split = cfg.get("dataset_path"), cfg.get("dataset_name"), cfg.get("test_split")
    else:
        hub, config, split = SOURCES[task][:3] if task in SOURCES else (None, None, None)
    subset = ("local fixture" if rendered.get("local") or rendered.get("data_path")
              else f"LIMIT={rendered['limit']} questions" if rendered.get("limit") is not None
              else None if is_hub(hub) else "no single hub dataset")  # fmt: skip
    name = (tab.get("columns") or {}).get(row["column"], row["column"])
    return Measured(
        column=row["column"], name=name, setting=setting, value=float(row["measured"]), metric=metric[0],
        metric_name=metric[1], dataset=task if subset else hub, dataset_name=f"{name} ({subset})" if subset else name,
        task_type=OUTPUT_TASK.get((cfg or {}).get("output_type")) or STAGE_TASK.get(m["stage"], "multiple-choice"),
        config=config, split=split, on_hub=subset is None, date=m.get("finished"), source=source,
    )  # fmt: skip


def build(run, reported: Path) -> Card:
    """The card and the hub's metadata of a recipe run's final model (runs/<run>), from the run's records."""
    run = Path(os.path.normpath(Path(run).absolute()))
    if not run.is_dir():
        raise AloeError(f"{run}: no such recipe run folder (runs/<recipe>[-<profile>])")
    model, manifest, m = final_model(run)
    rec = planned(run, manifest, m)
    results, verified = measured(run, model, reported)
    model_rows, bases = models(run, rec)
    spec, sources, trained, datasets = data(run, m)
    recipe = rec["raw"]["recipe"]
    tools = [next(iter(x.get("tools") or {}), None) for x in (read_stage(run, "sft"), read_stage(run, "merge"), m)]
    card_data = ModelCardData(
        base_model=bases or None, datasets=datasets or None, license=recipe.get("license"),
        library_name="transformers", pipeline_tag="text-generation",
        tags=["medical", "aloe", "aloe-repro", "merge", "dpo", *filter(None, tools)],
        model_name=run.name if results else None, eval_results=[x.result() for x in results] or None,
    )  # fmt: skip
    entries = [x.entry(run.name) for x in results if x.on_hub]
    body = _body(run, rec, model, manifest, m, results, verified, model_rows, (spec, sources, trained))
    return Card(
        run=run,
        readme=f"---\n{card_data.to_yaml()}\n---\n\n{body}",
        metadata=card_data.to_dict(),
        results=results,
        eval_results=yaml.safe_dump(eval_result_entries_to_yaml(entries), sort_keys=False) if entries else None,
        model=model,
        manifest={"path": str(manifest), "key": m["key"]},
    )


def _body(run, rec, model, manifest, m, results, verified, model_rows, data_) -> str:
    recipe, (spec, sources, trained) = rec["raw"]["recipe"], data_
    released = recipe.get("released_as") or recipe.get("name") or rel(rec["dir"], run)
    profile = rec["profile"]
    out = [
        f"# {md(run.name)}: a reproduction of {md(released)}",
        "",
        f"The final model of the recipe run {md(run.name)} of the Aloe reproduction kit (aloe-repro): recipe "
        f"{md(rel(rec['dir'], run))}" + (f", profile {md(profile)}" if profile else "") + f"; model "
        f"{md(rel(model['path'], run))}, sha256 {md(model['sha256'])}, made by the stage recorded in "
        f"{md(rel(manifest, run))} (key {md(m['key'])}). Every value below is read from the run's plan and manifests.",
    ]
    if profile:
        out += ["", f"**Not {md(released)}.** The profile {md(profile)} stands in for models, data or sizes (the "
                "recipe tables show each value as written and as run): every number below describes this run only."]  # fmt: skip
    out += ["", "## Models", "", table(["role", "as written in the recipe", "as run", "sha256"], model_rows)]
    out += ["", "## Evaluation", ""]
    if results:
        out += ["Exported as the card's model-index and, for a benchmark's whole hub dataset, as `.eval_results/` (the "
                "hub lists those on the leaderboard of a dataset registered as a benchmark):", "",
                table(["column", "setting", "metric", "value", "dataset", "config", "task", "on the hub", "results"],
                      [[x.name, x.setting, x.metric_name, x.value, x.dataset_name if not x.on_hub else x.dataset,
                        x.config, x.task_type, "yes" if x.on_hub else "no", x.source] for x in results])]  # fmt: skip
    else:
        out += ["No verify table of this run holds a measured number (`make verify`, or the chain's verify job)."]
    for f, v in verified:
        rows = v.get("rows") or []
        heads = list(rows[0]) if rows else []
        out += ["", f"### Verify: {md(v.get('model'))}, table {md(v.get('table'))}, {md(v.get('setting'))}", "",
                f"From {md(rel(f, run))}; measured: {md(rel(v.get('results'), run))}.", "",
                table(heads, [[r.get(h) for h in heads] for r in rows])]  # fmt: skip
    out += ["", "## Training data", "", f"data_prep settings: {md(spec)}", "",
            table(["source", "read from", "config", "split", "revision"], sources), "",
            table(["stage", "input", "file", "sha256"], trained)]  # fmt: skip
    out += ["", "## Recipe", "", "Tags: [P] published, [D] derived from published numbers, [C] a choice of the recipe "
            "(its note says why). *as run* shows a value the profile changed."]  # fmt: skip
    for stem in rc.FILES:
        rows, remark = recipe_rows(rec, stem, run)
        out += ["", f"<details><summary>{md(stem)}.yaml: {len(rows)} values{md('; ' + remark) if remark else ''}"
                "</summary>", "", table(["key", "as written", "as run", "tag", "note"], rows), "", "</details>"]  # fmt: skip
    out += ["", "## Environments and provenance", "",
            table(["stage folder", "stage", "environment lock", "tools", "code sha256", "manifest key", "wall s"],
                  provenance(run))]  # fmt: skip
    release = run / RELEASE
    shown = release.relative_to(ROOT) if release.is_relative_to(ROOT) else release
    out += ["", "## Upload", "", "Not run by the kit; `release.json` is the kit's own record of what this folder was "
            "built from:", "", "```sh", f"hf upload <namespace>/<name> '{shown}' . --exclude release.json", "```", ""]  # fmt: skip
    return "\n".join(out)


def _sorted(results) -> list:
    return sorted(results, key=repr)


def validate(folder: Path, card: Card):
    """Read the written card and metadata back with huggingface_hub's own parsers (local files: never the hub): the
    YAML block, the model-index and the .eval_results entries must hold exactly what was meant."""
    readme = Path(folder) / "README.md"
    meta = metadata_load(readme)
    loaded = ModelCard.load(readme).data
    if meta != card.metadata:
        raise AloeError("the card's YAML block does not read back as written", file=readme)
    want = _sorted(x.result() for x in card.results)
    got = _sorted(model_index_to_eval_results(meta["model-index"])[1]) if "model-index" in meta else []
    if got != want or _sorted(loaded.eval_results or []) != want:
        raise AloeError("the card's model-index does not read back as the measured columns", file=readme)
    f = Path(folder) / EVAL_RESULTS
    entries = parse_eval_result_entries(yaml.safe_load(f.read_text())) if f.is_file() else []
    if entries != [x.entry(card.run.name) for x in card.results if x.on_hub]:
        raise AloeError("the .eval_results entries do not read back as the measured columns", file=f)
