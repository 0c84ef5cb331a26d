"""The preflight's collective check (runs in .venv/dpo on every rank, under torchrun; scripts/lib/launch.py).

Each rank joins the process group as the training stages will (NCCL on GPUs, with the cluster's NCCL settings
from its environment; gloo on CPU), checks that it sees its GPU, and all ranks all-reduce a tensor of ones: the sum
must be the world size. Rank 0 prints one JSON line: backend, world size, GPUs per node, the all-reduce's seconds.

usage: torchrun ... allreduce.py [--timeout-s 300]
"""

import argparse
import datetime
import json
import os
import sys
import time

import torch
import torch.distributed as dist


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timeout-s", type=int, default=300, help="how long a rank waits for the others")
    a = ap.parse_args()
    cuda = torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        if local >= torch.cuda.device_count():
            sys.exit(f"[preflight] rank {os.environ.get('RANK')}: local rank {local} but "
                     f"{torch.cuda.device_count()} GPU(s) visible on {os.uname().nodename}")  # fmt: skip
        torch.cuda.set_device(local)
    backend = "nccl" if cuda else "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=a.timeout_s))
    world = dist.get_world_size()
    t = torch.ones(1024, device="cuda" if cuda else "cpu")
    t0 = time.time()
    dist.all_reduce(t)
    if cuda:
        torch.cuda.synchronize()
    took = time.time() - t0
    ok = bool((t == world).all())
    if dist.get_rank() == 0:
        gpus = torch.cuda.device_count() if cuda else 0
        print(json.dumps({"backend": backend, "world_size": world, "gpus_per_node": gpus, "all_reduce_s": round(took, 3),
                          "ok": ok}), flush=True)  # fmt: skip
    dist.destroy_process_group()
    sys.exit(0 if ok else f"[preflight] all-reduce of ones over {world} ranks gave {t[0].item()}")


if __name__ == "__main__":
    main()
