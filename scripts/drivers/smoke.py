"""make smoke [RECIPE=]: a published recipe's whole chain on the tiny model on CPU, with the real tools
(default the 8B recipe; a Qwen recipe runs on the kit's Qwen2-shaped models).

tiny-kit -> data (data_prep on fixture corpora) -> sft (axolotl) -> merge (mergekit) -> dpo (OpenRLHF, 5 + 1 runs)
-> medprompt (kNN few-shot, shuffled ensembles, vote) -> eval (lm-eval on local fixtures of the Table 9 tasks)
-> verify: the jobs of `make reproduce-8b` (scripts/lib/chain.py), each run here on its plan
(runs/<run>/plan/<job>.json), one after the other. Each stage is its own process reading the previous stage's
manifest; a finished stage with the same inputs is skipped. Ends with a summary table read from the manifests.
Tiny-model numbers show the machinery works; they are not the paper's numbers.

  python -m scripts.drivers.smoke [--recipe recipes/qwen2.5-aloe-beta-7b] [--force] [--runs DIR]
"""

import argparse
import subprocess
import sys
from pathlib import Path

from scripts import core
from scripts.core import table
from scripts.lib import chain, cli, stages
from scripts.lib import manifest as mf
from scripts.lib import recipe as rc

PROFILE = "cpu-tiny"


def figure(stage, m):
    x = m.get("metrics") or {}
    if stage == "tiny-kit":
        return "; ".join(f"{family} {v.get('params')} params, vocab {v.get('vocab')}" for family, v in x.items())
    if stage == "data":
        steps = x.get("steps", {})
        dropped = sum(v["dropped"] for v in steps.values())
        return f"data_prep on fixture corpora: {x.get('sft_rows')} rows kept, {dropped} dropped with a reason"
    if stage == "sft":
        return f"loss {x.get('loss_first'):.4f} -> {x.get('loss_last'):.4f} ({x.get('steps')} steps)"
    if stage == "merge":
        eos = x.get("repaired", {}).get("eos_token_id", {})
        return f"eos {eos.get('before')} -> {eos.get('after')}, generation_config {x.get('repaired', {}).get('generation_config')}"
    if stage == "dpo":
        runs = m.get("runs") or []
        margins = ", ".join(f"{r['reward_margin_last']:+.2e}" for r in runs if r.get("reward_margin_last") is not None)
        return f"{len(runs)} runs; reward margin at the end of each: {margins}"
    if stage == "eval":
        accs = [v["acc"] for v in x.values() if isinstance(v.get("acc"), float)]
        return f"{len(x)} fixture tasks, mean acc {sum(accs) / len(accs):.3f} (chance about 0.26)"
    if stage == "medprompt":
        return (
            f"acc {x['accuracy']:.3f}, parse rate {x['parse_rate']:.2f}, {x['generated_tokens']} tokens "
            f"({x['members_run']} members)"
        )
    return ""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default=str(core.ROOT / "runs"), help="root of run outputs (default runs/)")
    ap.add_argument("--recipe", default=cli.DEFAULT_RECIPE, help=f"recipe folder (default {cli.DEFAULT_RECIPE})")
    ap.add_argument("--force", action="store_true", help="rerun every stage")
    a = ap.parse_args(argv)
    runs = Path(a.runs).resolve()
    r = rc.load(a.recipe, profile=PROFILE, kit=stages.folder("tiny-kit", runs, ""))
    jobs = chain.write_plans(
        chain.build(r, str(runs), fixtures=True, force=a.force)
    )  # the chain `make reproduce-8b` runs
    rows, dpo_wall, started = [], 0.0, mf.now()
    last_dpo = [j for j in jobs if j.stage == "dpo"][-1]
    for job, dt, code in chain.run_here(jobs[:-1]):  # verify last, after the summary
        if code:
            print(f"\nsmoke: {job.name} failed (exit {code})", file=sys.stderr)
            return code
        if job.stage == "dpo" and job is not last_dpo:
            dpo_wall += dt  # one summary row for the whole DPO chain
            continue
        dt, dpo_wall = dt + dpo_wall, 0.0
        m = mf.read(job.folder)
        skipped = m["finished"] < started  # finished before this smoke started: skipped
        out = next(iter(m["outputs"].values()))["path"] if m["outputs"] else "-"
        rows.append(
            [
                job.stage,
                f"{dt:.0f} s" + (" (skipped)" if skipped else ""),
                out.replace(str(core.ROOT) + "/", ""),
                figure(job.stage, m),
            ]
        )
    print("\nsmoke summary (tiny model on CPU: these figures show the chain works, not the paper's numbers)")
    print(table(["stage", "wall", "output", "what shows it worked"], rows))
    print("\n=== verify (the tiny model against its fixture expectation; NOT the paper's numbers) ===", flush=True)
    return subprocess.run(jobs[-1].argv(), cwd=core.ROOT).returncode


if __name__ == "__main__":
    sys.exit(cli.edge(main))
