"""An axolotl plugin that saves and stops when asked (runs in .venv/sft, inside `axolotl train`).

scripts/sft.py adds it to the config it writes (never to the stage's identity) when ALOE_SAVE_REQUEST names a
file: the Slurm batch script creates that file on the time-limit warning (scripts/lib/slurm.py). At the end of
the step during which it appears, every rank agrees (a MAX all-reduce, so all stop at the same step), the trainer
saves a full checkpoint (weights, optimizer, scheduler, RNG, data position) and stops; the stage then ends
without publishing anything and the requeued job resumes from that checkpoint.
"""

import os
from pathlib import Path

import torch
import torch.distributed as dist
from axolotl.integrations.base import BasePlugin
from transformers import TrainerCallback

REQUEST = "ALOE_SAVE_REQUEST"


def asked(path: Path) -> bool:
    """Whether the request file exists, as every rank agrees."""
    flag = path.exists()
    if dist.is_available() and dist.is_initialized():
        device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else "cpu"
        t = torch.tensor([float(flag)], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        flag = bool(t.item())
    return flag


class SaveOnRequest(TrainerCallback):
    def __init__(self, path):
        self.path = Path(path)

    def on_step_end(self, args, state, control, **kwargs):
        if asked(self.path):
            print(f"[sft] save requested ({self.path}): saving at step {state.global_step} and stopping", flush=True)
            control.should_save = True
            control.should_training_stop = True
        return control


class SaveOnRequestPlugin(BasePlugin):
    def add_callbacks_pre_trainer(self, cfg, model):
        path = os.environ.get(REQUEST)
        return [SaveOnRequest(path)] if path else []
