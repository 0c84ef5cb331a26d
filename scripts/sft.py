"""Stage sft: supervised fine-tuning with axolotl (preprocess, then train) in .venv/sft.

Reads the training data from the data stage's manifest, renders the recipe's sft.yaml (+ profile),
validates it with axolotl's own validator and the batch arithmetic, then runs axolotl. Output:
<runs>/<recipe>/sft/model (weights, config, tokenizer, generation config: the artifact only, so two identical
runs hash the same), axolotl's prepared dataset (sft/prepared) and its manifest (loss first -> last, tool
versions, batch numbers). Resume, not restart: the trainer saves a full checkpoint (weights, optimizer, scheduler,
RNG, data position) as sft.yaml says (`saves_per_epoch`: about every hour of the published layout); a rerun of an
interrupted stage with the same identity resumes from its newest complete checkpoint (one being written when the
job died has no trainer_state.json, written last, and is ignored), and the manifest records the step it resumed
from and each attempt. Asked to by a Slurm batch script on its time-limit warning (the file ALOE_SAVE_REQUEST
names), the trainer saves at the end of the current step and stops (scripts/tools/axolotl_save_on_request.py),
and the stage ends without publishing. When the stage finishes, its checkpoints and logs go to sft/train/, which no hash covers
(--keep-checkpoints N keeps the last N; default none, as the paper publishes none).

  python -m scripts.sft --recipe recipes/aloe-beta-8b --world-size 32
  python -m scripts.sft --profile cpu-tiny
"""

import json
import os
import shutil
import sys
from functools import partial
from pathlib import Path

import yaml

from scripts.core import AloeError
from scripts.lib import checks, cli, driver, hardware, launch, placeholders, render, stages, tracking, venv
from scripts.lib import manifest as mf


def loss_curve(model_dir: Path) -> list:
    states = sorted(model_dir.glob("checkpoint-*/trainer_state.json"), key=lambda f: int(f.parent.name.split("-")[1]))
    if not states:
        return []
    return [h["loss"] for h in json.loads(states[-1].read_text())["log_history"] if "loss" in h]


def newest_checkpoint(model_dir: Path) -> Path | None:
    """The trainer's newest complete checkpoint: trainer_state.json is the last file it writes, and names the step."""
    done = [
        d
        for d in model_dir.glob("checkpoint-*")
        if (d / "trainer_state.json").is_file() and d.name.split("-")[1].isdigit()
    ]
    return max(done, key=lambda d: int(d.name.split("-")[1]), default=None)


def keep_artifact_only(model_dir: Path, train_dir: Path, keep: int):
    """Move the trainer's checkpoints, logs and model card out of the model folder (the output is weights, config,
    tokenizer and generation config; its hash must not change with optimizer states, timestamps or where it was
    built); keep the last `keep` checkpoints."""
    train_dir.mkdir(parents=True, exist_ok=True)
    ckpts = sorted(model_dir.glob("checkpoint-*"), key=lambda d: int(d.name.split("-")[1]))
    kept = ckpts[len(ckpts) - keep :] if keep else []
    for d in ckpts:
        if d in kept:
            os.replace(d, train_dir / d.name)
        else:
            shutil.rmtree(d)
    for f in [*model_dir.glob("*.log"), *model_dir.glob("README.md"), *model_dir.glob("runs")]:
        _replace(f, train_dir / f.name)  # axolotl's card holds its absolute paths; runs/: TensorBoard's event files


def _replace(src: Path, dest: Path):
    if dest.is_dir():
        shutil.rmtree(dest)
    os.replace(src, dest)


SAVE_REQUEST = "ALOE_SAVE_REQUEST"  # a file whose appearance asks the trainer to save and stop (scripts/lib/slurm.py)
SAVE_PLUGIN = "axolotl_save_on_request.SaveOnRequestPlugin"  # scripts/tools/, on the tool's path only then


class Sft(driver.Stage):
    name = "sft"

    def options(self, ap):
        ap.add_argument(
            "--keep-checkpoints",
            type=int,
            default=0,
            help="training checkpoints kept under sft/train/ (default 0: the paper's recipe publishes none)",
        )

    def prepare(self, ctx):
        r = ctx.recipe
        tracking.tracker()  # an unknown TRACKER is refused before anything runs
        batch = hardware.sft_batch(r)
        cli.fail_on(batch.problems)
        inputs = driver.inputs("sft", ctx.runs, r.name)
        folder = stages.folder("sft", ctx.runs, r.name)
        paths = placeholders.placeholders("sft", r, inputs, folder / ".partial")
        cfg = placeholders.fill(render.render_sft(r, grad_accum=batch.accum), paths, r.rel("sft"), required=paths)
        inputs["base_model"] = mf.model_input(cfg["base_model"])
        numbers = {"seed": cfg.get("seed"), **batch.numbers()}
        return driver.Prepared(
            folder, driver.recipe_info(r, "sft", cfg), inputs, "sft", numbers=numbers,
            tools=("axolotl", "torch", "transformers", "deepspeed", "accelerate"), own={"cfg": cfg}, resumable=True,
        )  # fmt: skip

    def check(self, ctx, p):
        cli.fail_on(checks.validate([ctx.recipe], ("sft",))[0])

    def run(self, ctx, p, b):
        cfg, world = p.own["cfg"], p.numbers["world_size"]
        resume = newest_checkpoint(Path(cfg["output_dir"]))
        if resume:  # the run's settings stay those of its identity; where it starts is the attempt's
            print(f"[sft] resuming from {resume} (step {resume.name.split('-')[1]})", flush=True)
            cfg = {**cfg, "resume_from_checkpoint": str(resume)}
        cfg = {**cfg, **tracking.axolotl(f"{ctx.recipe.name}/sft")}  # how it is watched: not its identity
        request = os.environ.get(SAVE_REQUEST)  # set by a Slurm batch script: save and stop on its warning
        env = tracking.env()
        if request:
            cfg["plugins"] = [*(cfg.get("plugins") or []), SAVE_PLUGIN]
            env["PYTHONPATH"] = str(venv.TOOLS)
        cfg_path = b.dir / "axolotl.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        log = b.dir / "log.txt"
        # one rank: axolotl's own process; more: torchrun, across the nodes of a Slurm job (scripts/lib/launch.py)
        train = (
            launch.on_ranks(str(venv.bin_dir("sft") / "torchrun"), ["-m", "axolotl.cli.train", cfg_path], world)
            if world > 1
            else ["axolotl", "train", cfg_path, "--launcher", "python"]
        )
        for name, step in (("preprocess", ["axolotl", "preprocess", cfg_path]), ("train", train)):
            print(f"[sft] $ {' '.join(map(str, step))}", flush=True)
            if venv.run("sft", step, log=log, extra_env=env).returncode:
                raise AloeError(f"[sft] {name} failed; see {log}")
        model_dir = Path(cfg["output_dir"])
        if request and Path(request).exists():  # stopped early on purpose: the requeued job resumes from here
            saved = newest_checkpoint(model_dir)
            raise AloeError(f"saved {saved} on the time-limit warning and stopped; the requeued job resumes there")
        losses = loss_curve(model_dir)
        keep_artifact_only(model_dir, b.dir / "train", ctx.opts["keep_checkpoints"])
        return {"loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
                "steps": len(losses), "losses": losses,
                "resumed_from_step": int(resume.name.split("-")[1]) if resume else None}  # fmt: skip

    def summary(self, ctx, p, m):
        x = m["metrics"]
        return f"{m['outputs']['model']['path']} (loss {x['loss_first']} -> {x['loss_last']} over {x['steps']} steps)"

    def figure(self, m):
        x = m["metrics"]
        return f"loss {x.get('loss_first'):.4f} -> {x.get('loss_last'):.4f} ({x.get('steps')} steps)"


STAGE = Sft()

main = partial(driver.main, STAGE)  # the command line: the one stage driver


if __name__ == "__main__":
    sys.exit(main())
