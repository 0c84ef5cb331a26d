"""TRACKER=tensorboard|wandb: the training tools' own experiment logging, off by default.

The tracker is how a run is watched, not what it computes: it goes into the config a tool is handed, never into a
stage's identity, so a finished stage is not retrained for it (and a skipped stage logs nothing new).
  tensorboard  offline event files: SFT under sft/train/runs/ (axolotl `use_tensorboard`), each DPO run under
               dpo/NN-<phase>-<chunk>/tensorboard/ (OpenRLHF `--logger.tensorboard_dir`); `make report` reads them
  wandb        Weights & Biases (axolotl `wandb_*`, OpenRLHF `--logger.wandb.*`), the run named <recipe run>/<job>;
               needs WANDB_API_KEY (OpenRLHF logs in with it) and a reachable server: the kit's environments keep
               WANDB_MODE=disabled unless the caller sets WANDB_MODE itself
MLflow is not offered: OpenRLHF has no MLflow logger and mlflow is in no stage's lock.
"""

import os

from scripts.core import AloeError

TRACKERS = ("tensorboard", "wandb")
PROJECT = "aloe-repro"  # [C] the W&B project every run logs to


def tracker() -> str | None:
    """The tracker asked for (make's TRACKER=), or None; an unknown one is refused before anything runs."""
    name = os.environ.get("ALOE_MAKE_TRACKER", "").strip().lower() or None
    if name is None or name in TRACKERS:
        return name
    why = " (OpenRLHF has no MLflow logger)" if name == "mlflow" else ""
    raise AloeError(f"TRACKER={name!r}: expected one of {', '.join(TRACKERS)} or nothing{why}")


def _wandb_key() -> str:
    key = os.environ.get("WANDB_API_KEY")
    if not key:
        raise AloeError("TRACKER=wandb needs WANDB_API_KEY in the environment (OpenRLHF logs in with it)")
    return key


def axolotl(run_name: str) -> dict:
    """Keys added to the axolotl config a stage writes."""
    name = tracker()
    if name == "tensorboard":
        return {"use_tensorboard": True}
    if name == "wandb":
        _wandb_key()
        return {"wandb_project": PROJECT, "wandb_name": run_name}
    return {}


def openrlhf(run_name: str, log_dir) -> list:
    """Flags added to one train_dpo command line."""
    name = tracker()
    if name == "tensorboard":
        return ["--logger.tensorboard_dir", str(log_dir)]
    if name == "wandb":
        return ["--logger.wandb.key", _wandb_key(), "--logger.wandb.project", PROJECT,
                "--logger.wandb.run_name", run_name]  # fmt: skip
    return []


def env() -> dict:
    """What a stage process needs for the tracker: W&B online only when asked for and not switched off."""
    return {"WANDB_MODE": os.environ.get("WANDB_MODE", "online")} if tracker() == "wandb" else {}
