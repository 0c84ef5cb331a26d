"""Stage dpo: OpenRLHF `train_dpo` runs in .venv/dpo, chained as the recipe's dpo.yaml plans them.

Stage 1 is one run per chunk (5 for Aloe Beta), one epoch each, every run starting from the previous
run's output (the first from the merge output); stage 2 (red team) starts from the last stage-1 output.
Each run has its own manifest under <runs>/<recipe>/dpo/NN-<stage>-<chunk>/, so an interrupted chain
resumes at the first unfinished run. On a machine without CUDA the runs go through
scripts/tools/openrlhf_cpu.py (the only shim); with CUDA through the `deepspeed` launcher.

  python -m scripts.dpo --recipe recipes/aloe-beta-8b --world-size 16
  python -m scripts.dpo --profile cpu-tiny
"""
import re
import socket
import sys
from pathlib import Path

from scripts.lib import checks, cli, venv
from scripts.lib import manifest as mf
from scripts.lib import recipe as rc

REWARDS = re.compile(r"chosen_reward=([-+\d.e]+), reject_reward=([-+\d.e]+)")


def data_files(run_dir: Path):
    """Map each planned run to the data stage's file for it (chunk i of stage 1, the red-team set)."""
    outs = mf.read_done(run_dir / "data", "dpo")["outputs"]

    def files_for(stage, i):
        key = f"dpo_chunk_{i}" if int(stage.get("chunks", 1)) > 1 else "dpo_redteam"
        return outs[key]
    return files_for


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(argv, world):
    if venv.has_cuda():
        return ["deepspeed", "--num_gpus", world, "--module", "openrlhf.cli.train_dpo", *argv], {}
    env = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "-1", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(free_port()), "TORCH_EXTENSIONS_DIR": str(venv.VENVS / "dpo" / "torch_extensions")}
    return ["openrlhf_cpu.py", *argv], env


def margins(log: Path):
    pairs = REWARDS.findall(log.read_text(errors="replace")) if log.exists() else []
    return [float(c) - float(r) for c, r in pairs]


def one_run(a, r, parent: Path, n: int, run: dict, model_in: dict, world: int, batch) -> dict:
    name = f"{n:02d}-{run['stage']}-{run['index']}"
    stage_dir = parent / name
    argv = rc.render_dpo_argv({**run, "data": run["data"]["path"]}, model_in["path"], stage_dir / ".partial" / "model")
    argv += ["--ckpt.path", str(stage_dir / ".partial" / "ckpt")]
    info = {"path": r.rel("dpo"), "profile": r.profile, "sha256": mf.sha256_json(argv), "rendered": argv}
    st = mf.Stage(stage_dir, f"dpo {name}", info, {"model": model_in, "data": run["data"]}, a.force,
                  seed=run["args"].get("train.seed"), world_size=world, micro_batch=batch[1],
                  grad_accum=batch[2], total_batch=batch[3])
    if not st.skip():
        with st:
            log = st.dir / "log.txt"
            cmd, env = command(argv, world)
            print(f"[dpo] {name}: from {model_in['path']}", flush=True)
            if venv.run("dpo", cmd, extra_env=env, log=log).returncode:
                raise SystemExit(f"[dpo] run {name} failed; see {log}")
            st.publish("model", st.partial / "model")
            m = margins(log)
            st.m["metrics"] = {"reward_margin_first": m[0] if m else None,
                               "reward_margin_last": m[-1] if m else None}
    return {"run": name, "stage": run["stage"], "index": run["index"], "data": run["data"]["path"],
            "model_in": model_in["path"], "output": st.m["outputs"]["model"], "wall_s": st.m["wall_s"],
            "skipped": st.skipped, **st.m["metrics"]}


def main(argv=None):
    a = cli.stage_parser(__doc__).parse_args(argv)
    r = cli.load(a)
    batch = rc.dpo_batch(r)
    cli.fail_on(batch[4])
    run_dir = cli.run_dir(a, r)
    merged = mf.read_done(run_dir / "merge", "dpo")["outputs"]["model"]
    runs = rc.dpo_runs(r, data_files(run_dir))
    inputs = {"model": merged, **{f"data_{i}": x["data"] for i, x in enumerate(runs)}}
    world = batch[0]
    st = mf.Stage(run_dir / "dpo", "dpo", cli.recipe_info(r, "dpo", r.files["dpo"]), inputs, a.force, clean=False,
                  world_size=world, micro_batch=batch[1], grad_accum=batch[2], total_batch=batch[3])
    if st.skip():
        return 0
    cli.fail_on(checks.validate([r], ("dpo",))[0])
    with st:
        done, model = [], merged
        for n, run in enumerate(runs, 1):
            rec = one_run(a, r, st.dir, n, run, model, world, batch)
            done.append(rec)
            model = rec["output"]
            st.m["runs"] = done
            st.save()  # progress is visible in the manifest while the chain runs
        st.m["outputs"]["model"] = model
        st.m["tools"] = venv.tool_versions("dpo", ["openrlhf", "torch", "transformers", "deepspeed"])
        st.m["metrics"] = {"runs": len(done), "reward_margin_last": done[-1].get("reward_margin_last")}
    print(f"[dpo] done: {len(done)} runs; final model {model['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
