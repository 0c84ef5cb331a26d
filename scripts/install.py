"""Build the per-stage environments `.venv/<stage>` from `envs/<stage>.txt` (or requirements.txt for base).

Idempotent: a stage whose stamp matches the hash of its lock file (and of this install plan) is skipped.
Torch 2.13.0 is installed first and held fixed; the build fails loudly if a dependency replaced it.

  python -m scripts.install                 # base + every stage env
  python -m scripts.install sft dpo         # only these
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENVS = ROOT / ".venv"
TORCH = "torch==2.13.0"
STAGES = ["base", "data", "sft", "merge", "dpo", "eval", "infer"]
GPU_ONLY = ["infer-gpu"]   # vLLM brings its own CUDA torch: built on request, never by default
NO_TORCH = ["base", "data", *GPU_ONLY]

# Steps run after torch and before the lock file, with the environment variables they need.
# flash-attn's setup.py imports torch (so no build isolation); on a CPU machine it builds its
# pure-Python part only (no CUDA kernels, no wheel download).
PRE_STEPS = {
    "dpo": [
        ({}, ["packaging", "psutil", "ninja", "einops", "wheel", "setuptools"]),
        ({"FLASH_ATTENTION_SKIP_CUDA_BUILD": "TRUE", "FLASH_ATTENTION_FORCE_BUILD": "TRUE"},
         ["--no-build-isolation", "flash-attn==2.8.3"]),
    ],
}
POST_ENV = {"dpo": {"DS_BUILD_OPS": "0"}}   # deepspeed ops are JIT-built on first use


def lock_file(stage):
    return ROOT / ("requirements.txt" if stage == "base" else f"envs/{stage}.txt")


def plan_hash(stage, cuda: bool):
    h = hashlib.sha256(lock_file(stage).read_bytes())
    h.update(json.dumps([TORCH, cuda, PRE_STEPS.get(stage), POST_ENV.get(stage), sys.version_info[:2]]).encode())
    return h.hexdigest()


def pip(venv, args, env=None):
    cmd = [str(venv / "bin" / "python"), "-m", "pip", "install", "--progress-bar", "off", *args]
    print("  $", " ".join(cmd[3:]), flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, **(env or {})})


def torch_version(venv):
    r = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch; print(torch.__version__)"],
                       capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def build(stage, cuda: bool):
    venv = VENVS / stage
    stamp = venv / ".installed"
    want = plan_hash(stage, cuda)
    if stamp.exists() and stamp.read_text().strip() == want:
        print(f"[install] .venv/{stage}: up to date (lock hash {want[:12]})")
        return 0.0
    t0 = time.time()
    print(f"[install] building .venv/{stage} from {lock_file(stage).relative_to(ROOT)}", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if stage not in NO_TORCH:
        pip(venv, [TORCH])
        for env, args in PRE_STEPS.get(stage, []):
            pip(venv, args, env)
    extra = [] if stage in NO_TORCH else [TORCH]
    pip(venv, ["-r", str(lock_file(stage)), *extra], POST_ENV.get(stage))
    if stage not in NO_TORCH:
        got = torch_version(venv)
        if not got or not got.startswith(TORCH.split("==")[1]):
            raise SystemExit(f"[install] .venv/{stage}: torch was replaced ({got!r}, expected {TORCH}); "
                             f"a dependency in {lock_file(stage).name} pulled another build")
    stamp.write_text(want + "\n")
    dt = time.time() - t0
    print(f"[install] .venv/{stage}: done in {dt:.0f} s", flush=True)
    return dt


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stages", nargs="*", default=STAGES, help=f"any of {STAGES + GPU_ONLY} (default: {STAGES})")
    a = ap.parse_args(argv)
    bad = [s for s in a.stages if s not in STAGES + GPU_ONLY]
    if bad:
        ap.error(f"unknown stage(s) {bad}; choose from {STAGES + GPU_ONLY}")
    cuda = shutil.which("nvidia-smi") is not None
    for s in a.stages:
        build(s, cuda)


if __name__ == "__main__":
    main()
