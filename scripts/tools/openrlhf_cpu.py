"""The one CPU shim of this repository: run unmodified OpenRLHF where torch has no CUDA (smoke tests).

OpenRLHF 0.11.2 cannot start on a CPU-only torch for two reasons (../shared/reference/tools_openrlhf.md):
  1. it imports flash_attn.bert_padding at import time, and flash-attn built without CUDA then fails on
     `import flash_attn_2_cuda`: a stub module stands in, and any kernel call through it raises;
  2. its DeepSpeed strategy calls torch.cuda.set_device / current_device / synchronize on the DPO path:
     they are rebound to CPU no-ops in this process.
Nothing is patched when CUDA is present. Upstream removes the need: OpenRLHF PRs #1301 and #1302.

usage: python openrlhf_cpu.py [--module openrlhf.cli.train_dpo] <train_dpo args>
       torchrun --nproc_per_node N openrlhf_cpu.py <args>     (several CPU ranks on gloo; srun across nodes)
       python openrlhf_cpu.py --serve FD                     (one rank, many runs in this process: serve())
"""

import contextlib
import gc
import itertools
import json
import os
import queue
import runpy
import socket
import sys
import threading
import traceback
import types
import uuid


def install() -> bool:
    """Apply the CPU stand-ins; returns False (and changes nothing) when CUDA is available."""
    import torch  # here, not at the top: a worker imports it inside its first run, so its warnings go to that log

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


def run(argv: list):
    """The tool's __main__ with these arguments ([--module M] args), after the stand-ins."""
    install()
    env = os.environ  # one line per rank: where it runs (the Slurm tests read it)
    print(
        f"[openrlhf_cpu] rank {env.get('RANK')} of {env.get('WORLD_SIZE')} (local {env.get('LOCAL_RANK')}) "
        f"on node {env.get('SLURMD_NODENAME', socket.gethostname())}",
        flush=True,
    )
    module = "openrlhf.cli.train_dpo"
    if argv[:1] == ["--module"]:
        module, argv = argv[1], argv[2:]
    sys.argv = [module] + argv
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def exit_status(e: SystemExit) -> int:
    """As the interpreter turns a SystemExit into a process's exit status."""
    if e.code is None or isinstance(e.code, int):
        return e.code or 0
    print(e.code, file=sys.stderr)
    return 1


def fresh_state():
    """What a run leaves in this process that a process of its own would not start with (OpenRLHF 0.11.2, DeepSpeed
    0.19). Left as it is, on purpose: the default process group (one rank on gloo, so it carries nothing of a run):
    deepspeed.init_distributed skips an initialized one, and DeepSpeed keeps groups made from it
    (deepspeed.utils.groups._WORLD_GROUP), so destroying it would leave those dangling; a later run's MASTER_PORT goes
    unused. Seeds need nothing: train() seeds python, numpy and torch (transformers.set_seed) at its start."""
    gc.collect()  # a run's engines, tqdm bars and ZeRO-3 config (transformers keeps a weak reference) sit in cycles
    zero = sys.modules.get("deepspeed.runtime.zero.partition_parameters")
    if zero:  # ZeRO-3's class-wide counters: parameter ids (ds_id) and persistence totals accumulate across runs
        zero.Init.param_id = zero.Init.num_persisted_parameters = zero.Init.num_persisted_elements = 0
        zero.Init.apply_param_persistence = False


@contextlib.contextmanager
def tee(log: str, console):
    """fds 1 and 2 into a pipe whose lines a thread appends to `log` and echoes to `console`, as scripts/lib/venv.py's
    run writes a tool's output (text, universal newlines, undecodable bytes replaced). The copy ends at a line of our
    own, not at EOF: DeepSpeed's op builder leaves a dup of fd 2 open (builder.py's has_function), so the pipe
    never closes while this process lives."""
    r, w = os.pipe()
    end = f"[openrlhf_cpu] end of run {uuid.uuid4().hex}\n"

    def copy():
        with open(r, errors="replace") as src, open(log, "a", errors="replace") as fh:
            for line in src:
                last = line.endswith(end)
                line = line[: -len(end)] if last else line
                fh.write(line)
                fh.flush()  # the log shows progress while the tool runs
                console.write(line)
                console.flush()
                if last:
                    return

    copying = threading.Thread(target=copy, daemon=True)
    copying.start()
    saved = os.dup(1), os.dup(2)
    os.dup2(w, 1)
    os.dup2(w, 2)
    try:
        yield
    finally:
        for f in (sys.stdout, sys.stderr):
            if not f.closed:  # a tool may close them (json.tool does)
                f.flush()
        for fd, old in enumerate(saved, 1):
            os.dup2(old, fd)
            os.close(old)
        os.write(w, end.encode())
        os.close(w)
        copying.join()


def serve(answer_fd: int):
    """One rank, many runs (scripts/dpo.py without CUDA): the imports and DeepSpeed's op loading are paid once.
    Each request, a JSON line {"argv", "env", "log"} on stdin, runs as a process of its own would: os.environ is the
    start-up environment plus `env`, its output goes to `log` and the console, and {"rc": exit status} goes back on
    answer_fd. A failed run ends the worker (its state may be half torn down); EOF on stdin ends it at once, even
    inside a run (the stage is gone: the run resumes from its checkpoint, as after a kill)."""
    answers, base = os.fdopen(answer_fd, "w"), dict(os.environ)
    console = os.fdopen(os.dup(1), "w", errors="replace")
    requests, stdin = queue.SimpleQueue(), os.fdopen(os.dup(0), "rb")
    # the runs see /dev/null as stdin: multiprocessing's children close sys.stdin first thing, and a sys.stdin that
    # the reading thread holds (blocked in read) at their fork would hang them (datasets' map with num_proc)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)

    def read():
        for line in stdin:
            requests.put(json.loads(line))
        os._exit(0)

    threading.Thread(target=read, daemon=True).start()
    for n in itertools.count(1):
        req = requests.get()
        os.environ.clear()
        os.environ.update({**base, **req["env"]})
        with tee(req["log"], console):
            print(f"[openrlhf_cpu] worker {os.getpid()}: run {n} in this process", flush=True)
            try:
                run(req["argv"])
                rc = 0
            except SystemExit as e:
                rc = exit_status(e)
            except BaseException:
                traceback.print_exc()
                rc = 1
        fresh_state()
        answers.write(json.dumps({"rc": rc}) + "\n")
        answers.flush()
        if rc:
            os._exit(rc)


def main():
    if sys.argv[1:2] == ["--serve"]:
        try:
            serve(int(sys.argv[2]))
        except BaseException:  # the worker's own error: it ends at once, whatever threads a run left behind
            traceback.print_exc()
            os._exit(1)
    else:
        run(sys.argv[1:])


if __name__ == "__main__":
    main()
