"""The one CPU shim of this repository: run unmodified OpenRLHF where torch has no CUDA (smoke tests).

OpenRLHF 0.11.2 cannot start on a CPU-only torch for two reasons (../shared/reference/tools_openrlhf.md):
  1. it imports flash_attn.bert_padding at import time, and flash-attn built without CUDA then fails on
     `import flash_attn_2_cuda`: a stub module stands in, and any kernel call through it raises;
  2. its DeepSpeed strategy calls torch.cuda.set_device / current_device / synchronize on the DPO path:
     they are rebound to CPU no-ops in this process.
Nothing is patched when CUDA is present. Upstream removes the need: OpenRLHF PRs #1301 and #1302.

usage: python openrlhf_cpu.py [--module openrlhf.cli.train_dpo] <train_dpo args>
       torchrun --nproc_per_node N openrlhf_cpu.py <args>     (several CPU ranks on gloo; srun across nodes)
"""

import os
import runpy
import socket
import sys
import types

import torch


def install() -> bool:
    """Apply the CPU stand-ins; returns False (and changes nothing) when CUDA is available."""
    if torch.cuda.is_available():
        return False
    stub = types.ModuleType("flash_attn_2_cuda")

    def _no_kernel(name):
        if name.startswith("__"):  # introspection (inspect, hasattr) must see a plain module
            raise AttributeError(name)
        raise RuntimeError(
            f"flash_attn_2_cuda.{name}: no flash-attn CUDA kernels on this machine; "
            "use --ds.attn_implementation sdpa and no packing"
        )

    stub.__getattr__ = _no_kernel
    stub.__file__ = __file__
    sys.modules.setdefault("flash_attn_2_cuda", stub)
    cpu = torch.device("cpu")
    torch.cuda.current_device = lambda: cpu  # only used as a .to() target on the DPO path
    torch.cuda.set_device = lambda *a, **k: None
    torch.cuda.synchronize = lambda *a, **k: None
    return True


def main():
    install()
    env = os.environ  # one line per rank: where it runs (the Slurm tests read it)
    print(
        f"[openrlhf_cpu] rank {env.get('RANK')} of {env.get('WORLD_SIZE')} (local {env.get('LOCAL_RANK')}) "
        f"on node {env.get('SLURMD_NODENAME', socket.gethostname())}",
        flush=True,
    )
    module, argv = "openrlhf.cli.train_dpo", sys.argv[1:]
    if argv[:1] == ["--module"]:
        module, argv = argv[1], argv[2:]
    sys.argv = [module] + argv
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
