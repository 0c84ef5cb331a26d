"""make reproduce-8b / reproduce-70b: the whole recipe chain, on a Slurm cluster or on this machine.

data -> sft -> merge -> DPO stage 1 (one job per chunk) -> DPO stage 2 -> Medprompt (with DATABASE=) and
eval -> verify. With --launcher slurm every stage is one batch job, chained with afterok dependencies
and laid out as the recipe's `hardware` says (SFT 8 nodes x 4 GPUs and DPO 4 x 4 for 8B; 16 x 4 and
25 x 4 for 70B); gradient accumulation is derived so the effective batch stays the published one, and a
layout that cannot reach it is refused before anything is submitted. With --launcher local the same
jobs run here, independent ones side by side (scripts/lib/local_jobs.py: --jobs, --verbose; each job's output in
runs/<run>/logs/<job>.log). Either way the stages write the same manifests, and a resubmission
starts at the first stage that is not done (finished stages with the same inputs are not resubmitted).

  python -m scripts.drivers.reproduce --recipe recipes/aloe-beta-8b --cluster recipes/clusters/example.yaml --dry-run
  python -m scripts.drivers.reproduce --recipe recipes/aloe-beta-8b --launcher slurm --cluster recipes/clusters/mine.yaml
  python -m scripts.drivers.reproduce --profile cpu-tiny-2node --fixtures --launcher slurm \\
      --cluster recipes/clusters/local.yaml --wait                     # the tiny chain on the test cluster
"""

import json
import sys
from pathlib import Path

from medprompt import database
from scripts import core
from scripts.core import AloeError, table
from scripts.lib import chain, cli, local_jobs, slurm, stages, venv
from scripts.lib import manifest as mf


def run_local(jobs: list, logs: Path, slots: int | None, verbose: bool) -> int:
    ran = local_jobs.run(chain.one_dpo_job(jobs), logs, slots, verbose)
    for job, _, _ in ran:  # verify's report on the console, as a Slurm job's log shows it (preflight: no stage)
        if job.stage in stages.SPECS and stages.spec(job.stage).jobs == "report" and not verbose:
            print(f"\n=== {job.name} ===\n" + local_jobs.output(logs, job), end="", flush=True)
    print("\n" + table(["job", "elapsed", "exit"], [[job.name, f"{dt:.0f} s", code] for job, dt, code in ran]))
    failed = [job.name for job, _, code in ran if code]
    if failed:
        print(f"stopped at {', '.join(failed)}; the same command again resumes from there", file=sys.stderr)
    return next((code for _, _, code in ran if code), 0)


def main(argv=None):
    ap = cli.stage_parser(__doc__)
    ap.add_argument("--launcher", choices=("slurm", "local"), default="slurm")
    ap.add_argument(
        "--cluster",
        default=str(core.ROOT / "recipes" / "clusters" / "example.yaml"),
        help="cluster settings file (recipes/clusters/); keys can be overridden as ALOE_SLURM_<KEY>",
    )
    ap.add_argument("--dry-run", action="store_true", help="print the batch scripts and the job graph; submit nothing")
    ap.add_argument(
        "--wait", action="store_true", help="follow the submitted jobs until they end; exit 1 if one failed"
    )
    ap.add_argument("--layout", help="another layout, NODESxGPUS per stage: sft=4x4,dpo=2x4 (grad accum is derived)")
    ap.add_argument("--fixtures", action="store_true", help="offline fixture data and tasks (the tiny chain)")
    ap.add_argument(
        "--suite",
        default="mcqa",
        choices=stages.SUITES,
        help="eval suite (openmedqa and fields: an mcqa eval job first)",
    )
    ap.add_argument("--database", help="Medprompt CoT database JSONL; without it the chain has no Medprompt jobs")
    local_jobs.options(ap)  # --launcher local
    a = ap.parse_args(argv)
    if a.world_size:
        raise AloeError("--world-size: give a per-stage --layout instead (e.g. sft=4x4)")
    r, runs = cli.load(a.recipe, a.profile, runs=a.runs)
    runs = str(runs.resolve())
    if a.database:  # what the Medprompt jobs would refuse, refused before anything is planned or submitted
        database.load(a.database)
    settings = slurm.load_settings(a.cluster) if a.launcher == "slurm" or a.dry_run else None
    jobs = chain.write_plans(
        chain.build(
            r,
            runs,
            fixtures=a.fixtures,
            suite=a.suite,
            database=a.database,
            layout=chain.parse_layout(a.layout),
            force=a.force,
            plans=stages.DRY_RUN_PLAN_FOLDER if a.dry_run else stages.PLAN_FOLDER,  # a queued chain keeps its plans
            cuda=bool(settings["gpu_request"]) if settings and a.launcher == "slurm" else None,  # the nodes' GPUs
        )
    )
    if settings:
        slurm.check_fits(jobs, settings)
    todo = jobs if a.force else chain.pending(jobs)
    cuda_vllm = [j for j in chain.vllm_jobs(todo) if j.cuda]
    if cuda_vllm and not a.dry_run and not venv.ready("infer-gpu"):
        names = ", ".join(j.name for j in cuda_vllm)
        raise AloeError(f"{names} run vLLM on CUDA: build its environment first, on a GPU machine "
                         "(python3 -m scripts.drivers.install infer-gpu); nothing was run or submitted")  # fmt: skip
    done = jobs[: len(jobs) - len(todo)]
    if done:
        print(f"already done (same inputs), not resubmitted: {', '.join(j.name for j in done)}")
    if not todo:
        print("nothing to do: every stage is done")
        return 0
    todo = chain.with_preflight(todo)  # plans, inputs, environments and ranks checked before hours are spent
    if a.launcher == "local" and not a.dry_run:
        return run_local(todo, Path(runs) / local_jobs.LOG_FOLDER.format(run=r.name), a.jobs, a.verbose)
    log_dir = Path(runs) / stages.SLURM_FOLDER.format(run=r.name)
    python = str(venv.VENVS / "base" / "bin" / "python")
    ids = slurm.submit(todo, settings, log_dir, python, dry_run=a.dry_run)
    print(f"{'dry run, nothing submitted' if a.dry_run else 'submitted'}: {r.name} on {settings['source']}")
    print(slurm.graph(todo, ids if not a.dry_run else {}, settings, done))
    if a.dry_run:
        return 0
    record = log_dir / f"submitted-{mf.now().replace(':', '')}.json"
    core.write_json_atomic(record, {"recipe": r.rel("recipe"), "profile": r.profile, "jobs": ids})
    print(
        f"\nfollow: squeue -j {','.join(ids.values())}    logs: {log_dir}/<id>-<job>.out\n"
        f"cancel: scancel {' '.join(ids.values())}\n"
        f"resume after a failure: the same command again (finished stages are not resubmitted)"
    )
    if not a.wait:
        return 0
    states = slurm.wait(ids)
    print(
        table(
            ["job", "id", "state", "elapsed", "exit", "reason"],
            [
                [n, ids[n], st.get("JobState"), st.get("RunTime"), st.get("ExitCode"), st.get("Reason")]
                for n, st in states.items()
            ],
        )
    )
    failed = [n for n, st in states.items() if st.get("JobState") != "COMPLETED"]
    print(json.dumps({"failed": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(cli.edge(main))
