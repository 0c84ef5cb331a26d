"""make smoke [RECIPE=]: a published recipe's whole chain on the tiny model on CPU, with the real tools
(default the 8B recipe; a Qwen recipe runs on the kit's Qwen2-shaped models).

tiny-kit -> data (data_prep on fixture corpora) -> sft (axolotl) -> merge (mergekit) -> dpo (OpenRLHF, 5 + 1 runs)
-> medprompt (kNN few-shot, shuffled ensembles, vote) -> eval (lm-eval on local fixtures of the Table 9 tasks)
-> verify: the jobs of `make reproduce-8b` (scripts/lib/chain.py), each run here on its plan
(runs/<run>/plan/<job>.json), independent ones side by side (scripts/lib/local_jobs.py: tiny-kit beside data,
medprompt beside eval), the six DPO runs as one job (chain.one_dpo_job: one OpenRLHF worker process for all). Each stage is its own process reading the previous stage's manifest; a finished stage with
the same inputs is skipped. Each job's output goes to runs/<run>/logs/<job>.log, a line per job start and end to the
console. Ends with a summary table read from the manifests, then verify's report. Tiny-model numbers show the
machinery works; they are not the paper's numbers.

  python -m scripts.drivers.smoke [--recipe recipes/qwen2.5-aloe-beta-7b] [--force] [--runs DIR] [--jobs N] [--verbose]
"""

import argparse
import subprocess
import sys
from pathlib import Path

from scripts import core
from scripts.core import table
from scripts.lib import chain, cli, driver, local_jobs, stages
from scripts.lib import manifest as mf
from scripts.lib import recipe as rc

PROFILE = "cpu-tiny"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default=str(core.ROOT / "runs"), help="root of run outputs (default runs/)")
    ap.add_argument("--recipe", default=cli.DEFAULT_RECIPE, help=f"recipe folder (default {cli.DEFAULT_RECIPE})")
    ap.add_argument("--force", action="store_true", help="rerun every stage")
    local_jobs.options(ap)
    a = ap.parse_args(argv)
    runs = Path(a.runs).resolve()
    r = rc.load(a.recipe, profile=PROFILE, kit=stages.folder("tiny-kit", runs, ""))
    jobs = chain.write_plans(
        chain.build(r, str(runs), fixtures=True, force=a.force)
    )  # the chain `make reproduce-8b` runs
    rows, started = [], mf.now()
    logs = runs / local_jobs.LOG_FOLDER.format(run=r.name)
    here = chain.one_dpo_job(jobs[:-1])  # the DPO runs in one job; verify last, after the summary
    for job, dt, code in local_jobs.run(here, logs, a.jobs, a.verbose):
        if code:
            print(f"\nsmoke: {job.name} failed (exit {code})", file=sys.stderr)
            return code
        m = mf.read(job.folder)
        skipped = m["finished"] < started  # finished before this smoke started: skipped
        out = next(iter(m["outputs"].values()))["path"] if m["outputs"] else "-"
        rows.append(
            [
                job.stage,
                f"{dt:.0f} s" + (" (skipped)" if skipped else ""),
                out.replace(str(core.ROOT) + "/", ""),
                driver.stage_of(job.stage).figure(m),
            ]
        )
    print("\nsmoke summary (tiny model on CPU: these figures show the chain works, not the paper's numbers)")
    print(table(["stage", "wall", "output", "what shows it worked"], rows))
    print("\n=== verify (the tiny model against its fixture expectation; NOT the paper's numbers) ===", flush=True)
    code = subprocess.run(jobs[-1].argv(), cwd=core.ROOT).returncode
    run = Path(jobs[-1].folder).parent
    where = run.relative_to(core.ROOT) if run.is_relative_to(core.ROOT) else run
    print(f"\nevery number down to its samples, offline: make report RUN={where}  (results/report/{run.name}.html)")
    return code


if __name__ == "__main__":
    sys.exit(cli.edge(main))
