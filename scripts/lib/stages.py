"""The stage registry: one declaration per stage, the only place stage folders and output keys are written.

A stage's `folder` is a template under the runs root (`{run}`: the recipe run's folder, runs/<recipe>[-<profile>]);
`outputs` maps each output key (a template where a stage makes several: `dpo_chunk_{i}`) to its path inside the
folder; `reads` names what it takes from upstream, {input name: (stage, output key)}. A tool-native file names an
upstream output by its token, @<stage>.<output key> (`@sft.model` in merge.yaml), and `fill` swaps tokens for real
paths: the one way every stage fills its file (scripts/lib/placeholders.py).
"""

import os
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

from scripts.core import AloeError


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
    suites: tuple = ()  # the `make eval SUITE=` values it runs
    # its jobs in a recipe run's chain (scripts/lib/chain.py), derived from these fields and `reads`:
    jobs: str = "one"  # one | runs (one per DPO run, chained) | datasets (one per benchmark) | suite (the chain's
    # suite, if its stage) | report (verify, after every results job) | kit (only where the profile uses the kit) | none
    fixture_args: tuple = ()  # its arguments on a fixture chain (FIXTURES=1)
    kit_models: bool = False  # its tool-native file names models the tiny kit stands in for: after the kit job
    vllm: str = "never"  # never | always | off-fixtures (an evaluation suite: vLLM on a cluster, HF on fixtures)
    hours: str | None = None  # recipe.yaml hardware[<entry>] key of the paper's wall hours ({phase}: per DPO phase)
    reads_suite: str | None = None  # the suite whose eval output it reads (its job then follows that suite's)


EVAL_FOLDER = "{run}/eval-{suite}"  # every evaluation suite of a recipe run's model, judged ones included
MODEL_EVAL_FOLDER = "eval/{model}/{suite}"  # `make eval MODEL=`: a model that is not a recipe run's own
PLAN_FOLDER = "{run}/plan"  # the rendered plan of every job (scripts/lib/plan.py)
DRY_RUN_PLAN_FOLDER = "{run}/plan/dry-run"  # a dry run's: never read by a submitted job
SLURM_FOLDER = "{run}/slurm"  # batch scripts, job logs and submission records of make reproduce
LABELS_FOLDER = "fields-labels"  # the field labeller's per-question cache, shared by every model it labels
VECTORS_FOLDER = "medprompt-vectors"  # Medprompt's database embeddings, by embedder and content, shared by every run
SUITE_JOB = "eval"  # the name of the job that runs a recipe run's evaluation suite, whichever stage runs it
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
            jobs="kit",
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
            fixture_args=("--fixtures",),
        ),
        Spec(
            "sft",
            "scripts.sft",
            "{run}/sft",
            "sft",
            {"model": "model", "prepared": "prepared"},
            reads={"data": ("data", "sft")},
            fills=("data", "model", "prepared"),  # sft.yaml: datasets[].path, output_dir, dataset_prepared_path
            kit_models=True,
            hours="hours",
        ),
        Spec(
            "merge",
            "scripts.merge",
            "{run}/merge",
            "merge",
            {"model": "model"},
            reads={"sft": ("sft", "model")},
            fills=("sft",),  # merge.yaml: the SFT entry of `models`
            kit_models=True,
        ),
        Spec("dpo-run", "scripts.dpo", "{run}/dpo/{n:02d}-{part}-{index}", "dpo", {"model": "model"}, jobs="none"),
        Spec(
            "dpo",
            "scripts.dpo",
            "{run}/dpo",
            "dpo",
            {"model": None},
            reads={"model": ("merge", "model")},
            jobs="runs",
            hours="hours_{phase}",
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
            jobs="datasets",
            vllm="always",
        ),
        Spec(
            "eval",
            "scripts.eval",
            EVAL_FOLDER,
            "eval",
            {"lm_eval": "lm_eval", "tasks": "tasks"},
            optional=("tasks",),
            reads={"model": FINAL_MODEL, "fixtures": ("data", "eval_{task}")},
            results="lm_eval",
            suites=("mcqa", "open", "all", "general"),
            jobs="suite",
            vllm="off-fixtures",
        ),
        Spec(
            "safety",
            "scripts.safety",
            EVAL_FOLDER,
            "eval",
            {
                "results": "out/results",
                "per_prompt": "out/per_prompt.jsonl",
                "asr": "out/asr.md",
                "answers": "out/answers.jsonl",
                "judge": "out/judge.jsonl",
            },  # fmt: skip
            reads={"model": FINAL_MODEL},
            results="results",
            suites=("safety",),
            jobs="suite",
            vllm="off-fixtures",
        ),
        Spec(
            "openmedqa",
            "scripts.openmedqa",
            EVAL_FOLDER,
            "eval",
            {
                "results": "out/results",
                "per_question": "out/per_question.jsonl",
                "answers": "out/answers.jsonl",
                "judge": "out/judge.jsonl",
            },  # fmt: skip
            reads={"model": FINAL_MODEL, "mcqa": ("eval", "lm_eval")},
            results="results",
            suites=("openmedqa",),
            jobs="suite",
            vllm="off-fixtures",
            reads_suite="mcqa",
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
            suites=("fields",),
            jobs="suite",
            vllm="off-fixtures",
            reads_suite="mcqa",
        ),
        Spec("verify", "scripts.verify", "{run}/verify", "data", jobs="report"),
    )
}


def _topological() -> tuple:
    """The stages in an order where every stage follows what it reads (ties: the order declared above)."""
    order, todo = [], list(SPECS)
    while todo:
        ready = next(n for n in todo if all(up in order for up, _ in SPECS[n].reads.values()))
        order.append(ready)
        todo.remove(ready)
    return tuple(order)


ORDER = _topological()  # the chain's stage order (scripts/lib/chain.py expands each into its jobs)
SUITES = {suite: s.name for s in SPECS.values() for suite in s.suites}  # every `make eval SUITE=`: its stage


def suite_stage(suite: str) -> str:
    """The stage that runs an evaluation suite (eval for the lm-eval suites, a judged suite's own stage)."""
    return SUITES[suite]


def spec(name: str) -> Spec:
    return SPECS[name]


NAME = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9_.-]*"
)  # a user-given name that becomes a folder: no separator, no leading dot


def folder(stage: str, runs, run: str, **fmt) -> Path:
    """The folder of `stage` in the run `run` (runs/<run>/...), its template filled with `fmt` (suite, dataset): each
    value a plain name, the folder inside the runs root, or an error naming the value before anything is made."""
    for key, value in fmt.items():
        if not NAME.fullmatch(str(value)):
            raise AloeError(f"{key} {value!r}: expected a name of letters, digits, '_', '.' or '-' (it names a folder)")
    return inside(runs, Path(runs) / SPECS[stage].folder.format(run=run, **fmt))


def inside(runs, path: Path) -> Path:
    """`path`, if its name stays inside the runs root; else an error (no name a user types reaches outside runs/).

    Checked on the names, not through links: a folder the user linked into runs/ (scratch storage, a shared kit)
    is theirs to place."""
    if not Path(os.path.normpath(Path(path).absolute())).is_relative_to(Path(os.path.normpath(Path(runs).absolute()))):
        raise AloeError(f"{path} is outside the runs root {Path(runs).absolute()}")
    return Path(path)


def model_eval_dir(runs, model: str, suite: str) -> Path:
    """Where `make eval MODEL=...` keeps the results of a model that is not a recipe run's own."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model.strip("/")).lstrip(".") or "_"
    return inside(runs, Path(runs) / MODEL_EVAL_FOLDER.format(model=slug, suite=suite))


def _pattern(template: str) -> re.Pattern:
    parts = string.Formatter().parse(template)
    return re.compile("".join(re.escape(lit) + (f"(?P<{f}>.+?)" if f else "") for lit, f, *_ in parts) + "$")


def matching(outputs: dict, key: str) -> dict:
    """The outputs of one declared key: {key: output}, or for a template {its value: output} (eval_{task} -> task)."""
    if "{" not in key:
        return {key: outputs[key]} if key in outputs else {}
    pat = _pattern(key)
    return {next(iter(m.groupdict().values())): v for k, v in outputs.items() if (m := pat.match(k))}
