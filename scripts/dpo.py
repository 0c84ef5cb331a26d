"""Stage dpo: OpenRLHF `train_dpo` runs in .venv/dpo, chained as the recipe's dpo.yaml plans them.

Stage 1 is one run per chunk (5 for Aloe Beta), one epoch each, every run starting from the previous
run's output (the first from the merge output); stage 2 (red team) starts from the last stage-1 output.
Each run has its own manifest under <runs>/<recipe>/dpo/NN-<stage>-<chunk>/, so an interrupted chain
resumes at the first unfinished run. Several ranks start through torchrun, across the nodes of a Slurm
job through srun (scripts/lib/launch.py); without CUDA each rank runs scripts/tools/openrlhf_cpu.py (the
only shim). `--upto N` stops after the N-th run: `make reproduce-8b` submits one Slurm job per run.

  python -m scripts.dpo --recipe recipes/aloe-beta-8b --world-size 16
  python -m scripts.dpo --profile cpu-tiny
"""

import re
import socket
import sys
from pathlib import Path

from scripts import core
from scripts.lib import checks, cli, launch, placeholders, stages, venv
from scripts.lib import manifest as mf
from scripts.lib import recipe as rc

# DPOTrainer's progress bar, once per micro-step (3 significant digits): loss, acc, chosen_reward, reject_reward
STEP = re.compile(r"loss=([-+\d.e]+), acc=([-+\d.e]+), chosen_reward=([-+\d.e]+), reject_reward=([-+\d.e]+)")


def data_files(r, runs):
    """Each planned run's data: the data stage's output that dpo.yaml's `files` names (its placeholder)."""
    folder = stages.folder("data", runs, r.name)
    outputs = placeholders.by_placeholder(r.path.name, "data", folder, mf.read_done(folder, "dpo")["outputs"])

    def files_for(stage, i):
        name = stage["files"].format(i=i)
        if name not in outputs:
            raise SystemExit(f"{r.rel('dpo')}: stage {stage['name']} files {name}: not an output of the data stage "
                             f"({folder / 'manifest.json'} has {', '.join(sorted(outputs))})")  # fmt: skip
        return outputs[name]

    return files_for


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(argv, world):
    """train_dpo on `world` ranks (scripts/lib/launch.py); without CUDA through the CPU shim."""
    torchrun = str(venv.bin_dir("dpo") / "torchrun")
    if venv.has_cuda():
        return launch.on_ranks(torchrun, ["-m", "openrlhf.cli.train_dpo", *argv], world), {}
    env = {"TORCH_EXTENSIONS_DIR": str(venv.VENVS / "dpo" / "torch_extensions")}
    if world == 1:  # one rank needs no launcher, only the variables it would set
        env.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="-1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    return launch.on_ranks(torchrun, [str(venv.TOOLS / "openrlhf_cpu.py"), *argv], world), env


def step_metrics(log: Path) -> dict:
    """Loss, reward accuracy and reward margin at the first micro-step (before any update: policy = reference)
    and at the last one, from OpenRLHF's own progress log."""
    steps = [[float(x) for x in m] for m in STEP.findall(log.read_text(errors="replace"))] if log.exists() else []
    out = {}
    for when, s in (("first", steps[0] if steps else None), ("last", steps[-1] if steps else None)):
        out.update({f"loss_{when}": s and s[0], f"acc_{when}": s and s[1], f"reward_margin_{when}": s and s[2] - s[3]})
    return out


def one_run(a, r, n: int, run: dict, model_in: dict, world: int, batch, before_compute) -> dict:
    stage_dir = stages.folder("dpo run", a.runs, r.name, n=n, part=run["stage"], index=run["index"])
    name = stage_dir.name
    argv = rc.render_dpo_argv({**run, "data": run["data"]["path"]}, model_in["path"], stage_dir / ".partial" / "model")
    argv += ["--ckpt.path", str(stage_dir / ".partial" / "ckpt")]
    info = {"path": r.rel("dpo"), "profile": r.profile, "sha256": core.sha256_json(argv), "rendered": argv}
    force = a.force and a.upto in (None, n)  # --upto N --force reruns run N; earlier ones only if their inputs changed
    st = mf.Stage(
        stage_dir,
        "dpo run",
        info,
        {"model": model_in, "data": run["data"]},
        force,
        env="dpo",
        code=[venv.TOOLS / "openrlhf_cpu.py"],
        seed=run["args"].get("train.seed"),
        world_size=world,
        micro_batch=batch[1],
        grad_accum=batch[2],
        total_batch=batch[3],
    )
    if not st.skip():
        before_compute()
        with st:
            log = st.dir / "log.txt"
            cmd, env = command(argv, world)
            print(f"[dpo] {name}: from {model_in['path']}", flush=True)
            if venv.run("dpo", cmd, extra_env=env, log=log).returncode:
                raise SystemExit(f"[dpo] run {name} failed; see {log}")
            stages.publish_all(st)
            st.m["metrics"] = step_metrics(log)
    (output,) = st.m["outputs"].values()
    return {
        "run": name,
        "stage": run["stage"],
        "index": run["index"],
        "data": run["data"]["path"],
        "model_in": model_in["path"],
        "output": output,
        "wall_s": st.m["wall_s"],
        "skipped": st.skipped,
        **st.m["metrics"],
    }


def main(argv=None):
    ap = cli.stage_parser(__doc__)
    ap.add_argument(
        "--upto",
        type=int,
        metavar="N",
        help="run the plan up to its N-th run (1-based) and stop; "
        "the stage manifest is written once the last run is done",
    )
    a = ap.parse_args(argv)
    r = cli.load(a)
    batch = rc.dpo_batch(r)
    cli.fail_on(batch[4])
    inputs = stages.inputs("dpo", a.runs, r.name)
    runs = rc.dpo_runs(r, data_files(r, a.runs))
    if a.upto is not None and not 1 <= a.upto <= len(runs):
        raise SystemExit(f"--upto {a.upto}: the plan of {r.rel('dpo')} has runs 1 to {len(runs)}")
    world = batch[0]
    validated = []

    def before_compute():  # OpenRLHF's own argparse, once, and only when a run is about to start
        if not validated:
            cli.fail_on(checks.validate([r], ("dpo",))[0])
            validated.append(True)

    def chain(upto, on_done=None):
        done, model = [], inputs["model"]
        for n, run in enumerate(runs[:upto], 1):
            done.append(one_run(a, r, n, run, model, world, batch, before_compute))
            model = done[-1]["output"]
            if on_done:
                on_done(done)
        return done, model

    if a.upto and a.upto < len(runs):
        done, model = chain(a.upto)
        print(f"[dpo] runs 1-{a.upto} of {len(runs)} done; last output {model['path']}")
        return 0
    inputs |= {f"data_{i}": x["data"] for i, x in enumerate(runs)}
    st = mf.Stage(
        stages.folder("dpo", a.runs, r.name),
        "dpo",
        cli.recipe_info(r, "dpo", r.files["dpo"]),
        inputs,
        a.force,
        clean=False,
        env="dpo",
        code=[venv.TOOLS / "openrlhf_cpu.py"],
        world_size=world,
        micro_batch=batch[1],
        grad_accum=batch[2],
        total_batch=batch[3],
    )
    if st.skip():
        return 0
    with st:

        def progress(done):  # visible in the manifest while the chain runs
            st.m["runs"] = done
            st.save()

        done, model = chain(len(runs), progress)
        st.m["outputs"] = dict(zip(stages.spec("dpo").outputs, [model]))  # the last run's model
        st.m["tools"] = venv.tool_versions("dpo", ["openrlhf", "torch", "transformers", "deepspeed"])
        st.m["metrics"] = {"runs": len(done), "reward_margin_last": done[-1].get("reward_margin_last")}
    print(f"[dpo] done: {len(done)} runs; final model {model['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
