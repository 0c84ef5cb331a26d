"""The stage registry: one declaration per stage, the only place stage folders and output keys are written.

A stage's `folder` is a template under the runs root (`{run}`: the recipe run's folder, runs/<recipe>[-<profile>]);
`outputs` maps each output key (a template where a stage makes several: `dpo_chunk_{i}`) to its path inside the
folder; `reads` names what it takes from upstream, {input name: (stage, output key)}. A tool-native file names an
upstream output by its token, @<stage>.<output key> (`@sft.model` in merge.yaml), and `fill` swaps tokens for real
paths: the one way every stage fills its file (scripts/lib/placeholders.py).
"""

import re
import string
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Spec:
    name: str  # the manifest's `stage`
    module: str  # its entry point (python -m)
    folder: str  # under the runs root
    hardware: str  # the recipe.yaml `hardware` entry it runs under (layout, world size)
    outputs: dict = field(default_factory=dict)  # output key -> path in the folder (None: a sub-run's output)
    optional: tuple = ()  # outputs that only some runs make
    reads: dict = field(default_factory=dict)  # input name -> (upstream stage, output key)
    fills: tuple = ()  # reads and own outputs whose placeholder its tool-native file names (scripts/lib/recipe.py)
    results: str | None = None  # the output verify reads: lm-eval-shaped results (Medprompt: its evaluation)


EVAL_FOLDER = "{run}/eval-{suite}"  # every evaluation suite of a recipe run's model, judged ones included
MODEL_EVAL_FOLDER = "eval/{model}/{suite}"  # `make eval MODEL=`: a model that is not a recipe run's own
PLAN_FOLDER = "{run}/plan"  # the rendered plan of every job (scripts/lib/plan.py)
DRY_RUN_PLAN_FOLDER = "{run}/plan/dry-run"  # a dry run's: never read by a submitted job
SLURM_FOLDER = "{run}/slurm"  # batch scripts, job logs and submission records of make reproduce
LABELS_FOLDER = "fields-labels"  # the field labeller's per-question cache, shared by every model it labels
FINAL_MODEL = ("dpo", "model")  # what the evaluations read by default: the recipe run's final model

SPECS = {
    s.name: s
    for s in (
        Spec(
            "tiny-kit",
            "scripts.make_tiny_kit",
            "tiny-kit",
            "data",
            {m: m for m in ("base", "instruct", "qwen-base", "qwen-instruct")},
        ),
        Spec(
            "data",
            "scripts.data",
            "{run}/data",
            "data",
            {
                "sft": "sft.jsonl",
                "dpo_chunk_{i}": "dpo/chunk_{i}.jsonl",
                "dpo_redteam": "dpo/redteam.jsonl",
                "work": "work",
                "sources": "sources",
                "eval_{task}": "eval/{task}.jsonl",
                "medprompt_database": "medprompt/database.jsonl",
            },
            optional=("sources", "eval_{task}", "medprompt_database"),  # --fixtures only
        ),
        Spec(
            "sft",
            "scripts.sft",
            "{run}/sft",
            "sft",
            {"model": "model", "prepared": "prepared"},
            reads={"data": ("data", "sft")},
            fills=("data", "model", "prepared"),  # sft.yaml: datasets[].path, output_dir, dataset_prepared_path
        ),
        Spec(
            "merge",
            "scripts.merge",
            "{run}/merge",
            "merge",
            {"model": "model"},
            reads={"sft": ("sft", "model")},
            fills=("sft",),  # merge.yaml: the SFT entry of `models`
        ),
        Spec("dpo run", "scripts.dpo", "{run}/dpo/{n:02d}-{part}-{index}", "dpo", {"model": "model"}),
        Spec("dpo", "scripts.dpo", "{run}/dpo", "dpo", {"model": None}, reads={"model": ("merge", "model")}),
        Spec(
            "eval",
            "scripts.eval",
            EVAL_FOLDER,
            "eval",
            {"lm_eval": "lm_eval", "tasks": "tasks"},
            optional=("tasks",),
            reads={"model": FINAL_MODEL, "fixtures": ("data", "eval_{task}")},
            results="lm_eval",
        ),
        Spec(
            "medprompt",
            "scripts.medprompt",
            "{run}/medprompt-{dataset}",
            "medprompt",
            {"generations": "out/generations.jsonl", "evaluation": "out/evaluation.json"},
            results="evaluation",
            reads={
                "model": FINAL_MODEL,
                "questions": ("data", "eval_{task}"),
                "database": ("data", "medprompt_database"),
            },
        ),
        Spec(
            "safety",
            "scripts.safety",
            EVAL_FOLDER,
            "eval",
            {"results": "out/results", "per_prompt": "out/per_prompt.jsonl", "asr": "out/asr.md"},
            reads={"model": FINAL_MODEL},
            results="results",
        ),
        Spec(
            "openmedqa",
            "scripts.openmedqa",
            EVAL_FOLDER,
            "eval",
            {"results": "out/results", "per_question": "out/per_question.jsonl"},
            reads={"model": FINAL_MODEL, "mcqa": ("eval", "lm_eval")},
            results="results",
        ),
        Spec(
            "fields",
            "scripts.fields",
            EVAL_FOLDER,
            "eval",
            {"results": "results", "per_sample": "per_sample.jsonl", "medical_fields": "medical_fields.json"},
            optional=("medical_fields",),
            reads={"mcqa": ("eval", "lm_eval")},
            results="results",
        ),
        Spec("verify", "scripts.verify", "{run}/verify", "data"),
    )
}


def suite_stage(suite: str) -> str:
    """The stage that runs an evaluation suite: a judged suite's own (safety, openmedqa, fields), else eval."""
    return suite if suite in SPECS and SPECS[suite].folder == EVAL_FOLDER else "eval"


def spec(name: str) -> Spec:
    return SPECS[name]


def folder(stage: str, runs, run: str, **fmt) -> Path:
    """The folder of `stage` in the run `run` (runs/<run>/...), its template filled with `fmt` (suite, dataset)."""
    return Path(runs) / SPECS[stage].folder.format(run=run, **fmt)


def model_eval_dir(runs, model: str, suite: str) -> Path:
    """Where `make eval MODEL=...` keeps the results of a model that is not a recipe run's own."""
    return Path(runs) / MODEL_EVAL_FOLDER.format(model=re.sub(r"[^A-Za-z0-9_.-]+", "_", model.strip("/")), suite=suite)


def _pattern(template: str) -> re.Pattern:
    parts = string.Formatter().parse(template)
    return re.compile("".join(re.escape(lit) + (f"(?P<{f}>.+?)" if f else "") for lit, f, *_ in parts) + "$")


def matching(outputs: dict, key: str) -> dict:
    """The outputs of one declared key: {key: output}, or for a template {its value: output} (eval_{task} -> task)."""
    if "{" not in key:
        return {key: outputs[key]} if key in outputs else {}
    pat = _pattern(key)
    return {next(iter(m.groupdict().values())): v for k, v in outputs.items() if (m := pat.match(k))}


def inputs(stage: str, runs, run: str, *names: str, **fmt) -> dict:
    """The upstream outputs `stage` reads (its `reads`, or only `names` of them), from done manifests."""
    from . import manifest as mf  # manifest -> recipe -> stages: the registry itself imports nothing of ours

    out, manifests = {}, {}
    for name in names or SPECS[stage].reads:
        up, key = SPECS[stage].reads[name]
        if up not in manifests:  # one read per upstream stage (medprompt takes two outputs of data)
            manifests[up] = mf.read_done(folder(up, runs, run, **fmt), stage)
        found = matching(manifests[up]["outputs"], key)
        if not found and key not in SPECS[up].optional:
            raise SystemExit(f"{stage}: {folder(up, runs, run, **fmt)}/manifest.json has no output {key!r}")
        out[name] = found if "{" in key else found.get(key, {})
    return out


def results_path(m: dict) -> Path:
    """What verify reads of a finished evaluation stage's manifest (its spec's `results` output)."""
    return Path(m["outputs"][SPECS[m["stage"]].results]["path"])


def publish_all(st):
    """Publish every declared output of st's stage: from st.partial (moved into place) or, for a stage that writes
    in place and resumes (medprompt, the judged evals), where it already lies; a missing required output fails."""
    sp = SPECS[st.stage]
    for key, dest in sp.outputs.items():
        if dest is None:
            continue
        if "{" in key:  # one output per file matching the template
            pat = _pattern(dest)
            for base in (st.partial, st.dir):
                found = [
                    f for f in sorted(base.rglob("*")) if f.is_file() and pat.match(f.relative_to(base).as_posix())
                ]
                for f in found:
                    rel = f.relative_to(base).as_posix()
                    st.publish(key.format(**pat.match(rel).groupdict()), f, rel)
                if found:
                    break
            if key not in sp.optional and not matching(st.m["outputs"], key):
                raise SystemExit(f"[{st.stage}] finished without any output {key!r} ({dest})")
        elif (st.partial / dest).exists() or (st.dir / dest).exists():
            st.publish(key, st.partial / dest if (st.partial / dest).exists() else st.dir / dest, dest)
        elif key not in sp.optional:
            raise SystemExit(f"[{st.stage}] finished without its output {key!r} ({dest})")
