"""Stage dpo: OpenRLHF `train_dpo` runs in .venv/dpo, chained as the recipe's dpo.yaml plans them.

Stage 1 is one run per chunk (5 for Aloe Beta), one epoch each, every run starting from the previous
run's output (the first from the merge output); stage 2 (red team) starts from the last stage-1 output.
Each run has its own manifest under <runs>/<recipe>/dpo/NN-<stage>-<chunk>/, so an interrupted chain
resumes at the first unfinished run, and an interrupted run resumes from its newest DeepSpeed checkpoint
(`ckpt.save_steps` in dpo.yaml; kept in the run's .partial/ckpt, deleted when the run finishes; OpenRLHF
skips the pairs the checkpoint has consumed). Several ranks start through torchrun, across the nodes of a Slurm
job through srun (scripts/lib/launch.py); without CUDA each rank runs scripts/tools/openrlhf_cpu.py (the
only shim), and one rank without CUDA runs every run of the invocation in one worker process of that shim (the
imports and DeepSpeed's start-up paid once; `--separate-processes`: one process per run). `--upto N` stops after
the N-th run: `make reproduce-8b` submits one Slurm job per run.

  python -m scripts.dpo --recipe recipes/aloe-beta-8b --world-size 16
  python -m scripts.dpo --profile cpu-tiny
"""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
from functools import partial
from pathlib import Path

from scripts import core
from scripts.core import AloeError
from scripts.lib import checks, cli, driver, hardware, launch, placeholders, render, stages, tracking, venv
from scripts.lib import manifest as mf
from scripts.lib.openrlhf_log import ATTEMPT, LOADED, MICRO, STEP


def data_files(r, runs):
    """Each planned run's data: the data stage's output that dpo.yaml's `files` names (its placeholder)."""
    folder = stages.folder("data", runs, r.name)
    outputs = placeholders.by_placeholder("data", mf.read_done(folder, "dpo")["outputs"])

    def files_for(stage, i):
        name = stage["files"].format(i=i)
        if name not in outputs:
            raise AloeError(f"{r.rel('dpo')}: stage {stage['name']} files {name}: not an output of the data stage "
                             f"({folder / 'manifest.json'} has {', '.join(sorted(outputs))})")  # fmt: skip
        return mf.verified(outputs[name], folder / "manifest.json")

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


def separate(cmd, env, log: Path) -> int:
    """A run in processes of its own (command()'s); its exit status."""
    return venv.run("dpo", cmd, extra_env=env, log=log).returncode


class Worker:
    """The runs of one invocation on one CPU rank (command()'s `world == 1` branch without CUDA), each sent in turn to
    one .venv/dpo process (openrlhf_cpu.py --serve, started by the first run that trains) that runs it in-process with
    the same arguments, environment and log as `separate` (the worker writes the log and echoes it to the console, as
    venv.run does). It is in this process's group, and ends with its stdin, even inside a run."""

    proc = answers = None

    def __call__(self, cmd, env, log: Path) -> int:
        if self.proc is None:
            r, w = os.pipe()
            tool = [venv.bin_dir("dpo") / "python", cmd[0], "--serve", str(w)]
            self.proc = subprocess.Popen(tool, stdin=subprocess.PIPE, env=venv.env_for("dpo"), cwd=core.ROOT,
                                         pass_fds=(w,))  # fmt: skip
            os.close(w)
            self.answers = os.fdopen(r)
        request = {"argv": [str(a) for a in cmd[1:]], "env": env, "log": str(log)}
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # the worker is gone: no answer comes
        answer = self.answers.readline()
        rc = json.loads(answer)["rc"] if answer else (self.proc.wait() or 1)
        if rc:  # the worker ends after a failed run
            self.close()
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait()
            self.answers.close()
            self.proc = self.answers = None


def step_metrics(log: Path, pairs_per_micro_step: int) -> dict:
    """From OpenRLHF's own progress log, over this build's attempts (the log's part from its last fresh attempt):
    loss, reward accuracy and margin at the first micro-step (before any update: policy = reference) and at the
    last one, the pairs the checkpoint resumed from, and the pairs trained in all (each counted once: what the
    checkpoint had consumed plus what the last attempt trained)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    text = text[text.rfind(ATTEMPT + "fresh") :] if ATTEMPT + "fresh" in text else text
    last = text[text.rfind(ATTEMPT) :] if ATTEMPT in text else text
    first_steps, last_steps = STEP.findall(text), STEP.findall(last)
    out = {}
    for when, s in (("first", first_steps[:1]), ("last", last_steps[-1:])):
        s = [float(x) for x in s[0]] if s else None
        out.update({f"loss_{when}": s and s[0], f"acc_{when}": s and s[1], f"reward_margin_{when}": s and s[2] - s[3]})
    resumed = LOADED.findall(last)
    out["resumed_from_pairs"] = int(resumed[-1]) if resumed else None
    micro = [int(k) for k in MICRO.findall(last)]
    out["pairs_trained"] = (out["resumed_from_pairs"] or 0) + max(micro, default=0) * pairs_per_micro_step
    return out


def universal(ckpt: Path, world: int, log: Path) -> int | None:
    """A checkpoint written on another number of ranks (a run preempted on 16 GPUs, resumed on 8 with the same total
    batch) is converted once to DeepSpeed's universal checkpoint (`latest_universal` names it), which OpenRLHF
    loads with --ds.use_universal_ckpt. Returns the ranks it was written on, or None: the same, or no checkpoint."""
    if not (ckpt / "latest").is_file():
        return None
    tag = (ckpt / "latest").read_text().strip()
    ranks = len(list((ckpt / tag).glob("zero_pp_rank_*_mp_rank_*_model_states.pt")))
    if ranks in (0, world):
        return None
    out, named = ckpt / f"{tag}_universal", ckpt / "latest_universal"
    if not (out.is_dir() and named.is_file() and named.read_text().strip() == out.name):
        print(f"[dpo] {tag} was written on {ranks} ranks, this run has {world}: converting it to a universal "
              "checkpoint", flush=True)  # fmt: skip
        shutil.rmtree(out, ignore_errors=True)
        convert = ["python", "-m", "deepspeed.checkpoint.ds_to_universal", "--input_folder", ckpt / tag,
                   "--output_folder", out]  # fmt: skip
        if venv.run("dpo", convert, log=log).returncode:
            raise AloeError(f"[dpo] converting {ckpt / tag} to a universal checkpoint failed; see {log}")
    return ranks


def run_build(ctx, p, n: int, run: dict, model_in: dict) -> mf.Build:
    """The Build of the n-th OpenRLHF run (its own manifest under dpo/NN-<phase>-<chunk>/)."""
    r, batch = ctx.recipe, p.own["batch"]
    folder = stages.folder("dpo-run", ctx.runs, r.name, n=n, part=run["phase"], index=run["index"])
    argv = render.render_dpo_argv({**run, "data": run["data"]["path"]}, model_in["path"], folder / ".partial" / "model")
    argv += ["--ckpt.path", str(folder / ".partial" / "ckpt"), "--ckpt.load_enable"]  # resumes where one is
    info = {"path": r.rel("dpo"), "profile": r.profile, "sha256": core.sha256_json(argv), "rendered": argv}
    upto = ctx.opts["upto"]
    force = ctx.force and upto in (None, n)  # --upto N --force reruns run N; earlier ones only if their inputs changed
    return mf.Build(
        folder, "dpo-run", info, {"model": model_in, "data": run["data"]}, force, resumable=True, env="dpo", code=p.code,
        relayout=True, seed=run["args"].get("train.seed"), **batch.numbers(),
    )  # fmt: skip


def one_run(ctx, p, n: int, run: dict, model_in: dict, before_compute, start) -> dict:
    b = run_build(ctx, p, n, run, model_in)
    if not b.skip():
        before_compute()
        with b:
            log, how = b.dir / "log.txt", "resuming" if b.m.get("attempts") else "fresh"
            with open(log, "a") as fh:
                fh.write(f"\n{ATTEMPT}{how} {mf.now()}\n")
            watch = tracking.openrlhf(f"{ctx.recipe.name}/{b.dir.name}", b.dir / "tensorboard")  # not its identity
            ranks = universal(b.partial / "ckpt", p.numbers["world_size"], log)
            watch += ["--ds.use_universal_ckpt"] if ranks else []
            cmd, env = command(b.m["recipe"]["rendered"] + watch, p.numbers["world_size"])
            env |= tracking.env()
            print(f"[dpo] {b.dir.name}: from {model_in['path']}", flush=True)
            if start(cmd, env, log):
                raise AloeError(f"[dpo] run {b.dir.name} failed; see {log}")
            driver.publish_all(b)
            n = p.numbers
            b.m["metrics"] = step_metrics(log, n["micro_batch"] * n["world_size"])
            resumed = b.m["metrics"]["resumed_from_pairs"]
            b.m["metrics"]["resumed_from_step"] = None if resumed is None else resumed // n["total_batch"]
            b.m["metrics"]["resumed_from_world_size"] = ranks  # None: not resumed on another number of ranks
    (output,) = b.m["outputs"].values()
    return {
        "run": b.dir.name,
        "phase": run["phase"],
        "index": run["index"],
        "data": run["data"]["path"],
        "model_in": model_in["path"],
        "output": output,
        "wall_s": b.m["wall_s"],
        "skipped": b.skipped,
        **b.m["metrics"],
    }


class Dpo(driver.Stage):
    name = "dpo"

    def options(self, ap):
        ap.add_argument(
            "--upto",
            type=int,
            metavar="N",
            help="run the plan up to its N-th run (1-based) and stop; "
            "the stage manifest is written once the last run is done",
        )
        ap.add_argument(
            "--separate-processes",
            action="store_true",
            help="start every run in processes of its own; by default one rank without CUDA runs them all in one "
            "worker process (the same weights, start-up paid once)",
        )

    def prepare(self, ctx):
        r, upto = ctx.recipe, ctx.opts["upto"]
        tracking.tracker()  # an unknown TRACKER is refused before anything runs
        batch = hardware.dpo_batch(r)
        cli.fail_on(batch.problems)
        inputs = driver.inputs("dpo", ctx.runs, r.name)
        runs = render.dpo_runs(r, data_files(r, ctx.runs))
        if upto is not None and not 1 <= upto <= len(runs):
            raise AloeError(f"--upto {upto}: the plan of {r.rel('dpo')} has runs 1 to {len(runs)}")
        mf.refuse_remote_code(inputs["model"]["path"], r.remote_code, "OpenRLHF")
        inputs |= {f"data_{i}": x["data"] for i, x in enumerate(runs)}
        numbers = batch.numbers()
        return driver.Prepared(
            stages.folder("dpo", ctx.runs, r.name), driver.recipe_info(r, "dpo", r.files["dpo"]), inputs, "dpo",
            code=(venv.TOOLS / "openrlhf_cpu.py",), numbers=numbers,
            tools=("openrlhf", "torch", "transformers", "deepspeed"), resumable=True,  # its runs are kept
            own={"batch": batch, "runs": runs},
        )  # fmt: skip

    def part(self, ctx, p):
        """--upto N short of the last run: runs 1..N only, no stage manifest (make reproduce: a job per run)."""
        upto = ctx.opts["upto"]
        if not upto or upto >= len(p.own["runs"]):
            return None
        done = self.chain(ctx, p, upto)
        return f"runs 1-{upto} of {len(p.own['runs'])} done; last output {done[-1]['output']['path']}"

    def is_done(self, ctx, p):
        upto = ctx.opts["upto"]
        if not upto or upto >= len(p.own["runs"]):
            return super().is_done(ctx, p)
        model = p.inputs["model"]
        for n, run in enumerate(p.own["runs"][:upto], 1):
            b = run_build(ctx, p, n, run, model)
            if not b.done:
                return False
            (model,) = b.previous["outputs"].values()
        return True

    def check(self, ctx, p):
        pass  # OpenRLHF's own argparse runs once, only when a run is about to start (chain)

    def chain(self, ctx, p, upto, on_done=None) -> list:
        validated, done, model = [], [], p.inputs["model"]

        def before_compute():
            if not validated:
                cli.fail_on(checks.validate([ctx.recipe], ("dpo",))[0])
                validated.append(True)

        one_rank = p.numbers["world_size"] == 1 and not venv.has_cuda() and not ctx.opts["separate_processes"]
        with Worker() if one_rank else contextlib.nullcontext(separate) as start:
            for n, run in enumerate(p.own["runs"][:upto], 1):
                done.append(one_run(ctx, p, n, run, model, before_compute, start))
                model = done[-1]["output"]
                if on_done:
                    on_done(done)
        return done

    def run(self, ctx, p, b):
        def progress(done):  # visible in the manifest while the chain runs
            b.m["runs"] = done
            b.save()

        done = self.chain(ctx, p, len(p.own["runs"]), progress)
        b.m["outputs"] = dict(zip(stages.spec("dpo").outputs, [done[-1]["output"]]))  # the last run's model
        return {"runs": len(done), "reward_margin_last": done[-1].get("reward_margin_last")}

    def summary(self, ctx, p, m):
        return f"{m['metrics']['runs']} runs; final model {m['outputs']['model']['path']}"

    def figure(self, m):
        runs = m.get("runs") or []
        margins = ", ".join(f"{r['reward_margin_last']:+.2e}" for r in runs if r.get("reward_margin_last") is not None)
        return f"{len(runs)} runs; reward margin at the end of each: {margins}"


STAGE = Dpo()

main = partial(driver.main, STAGE)  # the command line: the one stage driver


if __name__ == "__main__":
    sys.exit(main())
