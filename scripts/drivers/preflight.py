"""The preflight job of `make reproduce-*`: submitted first, on the nodes and layout of the chain's largest job;
every job that would start first waits for it, so a chain that cannot run fails in a minute, not hours in.

  1. every job's plan still holds (the recipe files hash as planned: scripts/lib/plan.py) and every file a job is
     given (a Medprompt database, a data mirror) exists;
  2. every input of the jobs that start first (their upstream stages already done) exists and hashes as its stage
     recorded: the stage's own preparation, as its job will run it;
  3. every stage environment equals its lock, package for package (the check of `make install`);
  4. all ranks of the layout meet and all-reduce (scripts/tools/allreduce.py): NCCL on GPUs with the cluster's
     settings (`env:` in recipes/clusters/<cluster>.yaml, exported by every batch script), gloo on CPU; a rank
     that sees no GPU of its own fails.
Every problem is listed; the exit status is 1 if there is one (Slurm then cancels the jobs after it: afterok).

  python -m scripts.drivers.preflight --world 16 --plans runs/aloe-beta-8b/plan/sft.json ...
"""

import argparse
import json
import sys
from pathlib import Path

from scripts.core import AloeError
from scripts.drivers import install
from scripts.lib import cli, driver, launch, stages, uv, venv
from scripts.lib import plan as pl


def plans(paths: list) -> tuple[list, list]:
    """([(plan file, its job, its runs root)], problems): each plan loaded as its job will load it."""
    out, problems = [], []
    for path in paths:
        try:
            p = pl.load(path)[1]
            out.append((path, p["job"], Path(p["runs"])))
        except AloeError as e:
            problems.append(str(e))
    return out, problems


def given_files(jobs: list) -> list:
    """A job argument naming a file or folder outside the runs root (given, not made by the chain) that is not
    there."""
    return [
        f"{job['name']}: {arg} does not exist"
        for _, job, runs in jobs
        for arg in map(str, job["args"])
        if "/" in arg and not arg.startswith("-") and not Path(arg).resolve().is_relative_to(runs.resolve())
        and not Path(arg).exists()
    ]  # fmt: skip


def inputs(jobs: list) -> list:
    """The jobs whose upstream jobs are not in this submission start first: their stage prepares as it will (a
    report job, verify, reads only what the chain's results jobs write)."""
    names = {job["name"] for _, job, _ in jobs}
    problems = []
    for path, job, _ in jobs:
        if set(job["after"]) & names or stages.spec(job["stage"]).jobs == "report":
            continue
        try:
            driver.prepared(job["stage"], ["--plan", str(path), *map(str, job["args"])])
            print(f"[preflight] {job['name']}: inputs as recorded", flush=True)
        except (AloeError, SystemExit) as e:
            problems.append(f"{job['name']}: {e}")
    return problems


def environments() -> list:
    cuda = venv.has_cuda()
    uv.bootstrap()
    problems = []
    for stage in install.STAGES:
        env, lock = install.VENVS / stage, install.lock_file(stage, cuda)
        if not (env / "bin" / "python").exists():
            problems.append(f".venv/{stage} is missing on {launch.where().get('node_list') or 'this machine'}")
            continue
        diff = install.differences(env, lock)
        problems += [f".venv/{stage} against {lock.name}: {d}" for d in diff]
        if not diff:
            print(f"[preflight] .venv/{stage}: matches {lock.name}", flush=True)
    return problems


def all_reduce(world: int) -> list:
    torchrun = str(venv.bin_dir("dpo") / "torchrun")
    target = [str(venv.TOOLS / "allreduce.py")]
    cmd = launch.on_ranks(torchrun, target, world)
    if cmd == target:  # one rank: still through torchrun, which sets what init_process_group reads
        cmd = [torchrun, "--standalone", "--nproc_per_node=1", *target]
    code = venv.run("dpo", cmd).returncode
    return [f"all-reduce over {world} rank(s) failed (exit {code})"] if code else []


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plans", nargs="+", required=True, type=Path, help="the plan files of the submitted jobs")
    ap.add_argument("--world", type=int, default=1, help="ranks of the largest job: the all-reduce runs on as many")
    a = ap.parse_args(argv)
    jobs, problems = plans(a.plans)
    problems += given_files(jobs) + inputs(jobs) + environments() + all_reduce(a.world)
    print(json.dumps({"preflight": "failed" if problems else "ok", "jobs": len(a.plans), "world": a.world}))
    if problems:
        raise AloeError("preflight failed; nothing else will start:\n  " + "\n  ".join(problems))
    return 0


if __name__ == "__main__":
    sys.exit(cli.edge(main))
