"""Where a stage runs, and how it starts its tool on its ranks.

One rank: the tool's own process. Several ranks on one machine: `torchrun --standalone`. Inside a Slurm
allocation of several nodes: `srun` starts one `torchrun` per node (--kill-on-bad-exit: one dead rank
ends the step), and they meet over c10d at the first node; that is the multi-node launch OpenRLHF's
maintainers advise (issue #1072) and the one axolotl documents.
"""

import os
import socket
import subprocess

from scripts.core import AloeError


def where() -> dict:
    """Recorded in every manifest: a Slurm job (id, nodes) or this machine."""
    e = os.environ
    if "SLURM_JOB_ID" in e:
        return {
            "kind": "slurm",
            "job_id": e["SLURM_JOB_ID"],
            "job_name": e.get("SLURM_JOB_NAME"),
            "nodes": int(e.get("SLURM_JOB_NUM_NODES", "1")),
            "node_list": e.get("SLURM_JOB_NODELIST"),
        }
    return {"kind": "local", "host": socket.gethostname()}


def master_addr(node_list: str) -> str:
    out = subprocess.run(["scontrol", "show", "hostnames", node_list], capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


def on_ranks(torchrun: str, target: list, world: int) -> list:
    """argv that runs `target` ([script, args...] or ['-m', module, args...]) on `world` ranks."""
    w = where()
    nodes = w.get("nodes", 1)
    if world % nodes:
        raise AloeError(f"{world} ranks cannot be spread evenly over the {nodes} nodes of Slurm job {w['job_id']}")
    if nodes > 1:
        port = os.environ.get("MASTER_PORT") or str(20000 + int(w["job_id"]) % 10000)
        return [
            "srun",
            f"--nodes={nodes}",
            f"--ntasks={nodes}",
            "--ntasks-per-node=1",
            "--kill-on-bad-exit=1",
            torchrun,
            f"--nnodes={nodes}",
            f"--nproc_per_node={world // nodes}",
            "--max_restarts=0",
            "--rdzv_backend=c10d",
            f"--rdzv_endpoint={master_addr(w['node_list'])}:{port}",
            f"--rdzv_id={w['job_id']}",
            *target,
        ]
    if world > 1:
        return [torchrun, "--standalone", f"--nproc_per_node={world}", "--max_restarts=0", *target]
    return target
