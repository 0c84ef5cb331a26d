"""uv, pinned and bootstrapped here, with this machine's package sources taken from its pip configuration.

Nothing about where packages come from is written into the repository: `pip config list` gives the index,
extra indexes, find-links, constraints and certificate, which are handed to uv as flags and environment.
Standard library only: scripts/drivers/install.py runs this before any environment exists.
"""

import os
import shlex
import subprocess
import sys
from pathlib import Path

from scripts.core import ROOT

VERSION = "0.13.9"  # uv itself (pinned; installed by bootstrap() with pip)
TOOL = ROOT / ".venv" / "uv"  # uv's own environment, not a stage environment
PYTHON = "3.11"
PLATFORM = "x86_64-manylinux_2_28"
PIP_DEFAULT_INDEX = "https://pypi.org/simple"  # pip's built-in index, used when the configuration sets none  # the locks are for Linux x86_64 (CPU machines here, H100/H200 nodes)


def pip_config() -> dict:
    """{key: [values]} of `pip config list` (global. / :env: / user prefixes dropped)."""
    python = getattr(sys, "_base_executable", sys.executable)  # the interpreter with pip, also from inside a venv
    out = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    conf = {}
    for line in out.splitlines():
        if "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.split(".", 1)[-1]
        conf.setdefault(key, [])
        for v in shlex.split(value.strip().strip("'\"")):
            if v not in conf[key]:
                conf[key].append(v)
    return conf


def sources(find_links=True, constraints=False) -> list:
    """uv flags for this machine's sources. find_links=False leaves out the find-links folders (a CUDA lock
    must not pick a local CPU build); constraints=True adds the machine's pip constraint files (compile only)."""
    conf = pip_config()
    # uv reads each version's files from the first index that has it (pip merges them): the main index
    # (pip's own default when the configuration names none) goes first, so a lock holds the files everyone
    # gets, and a partial local mirror only adds what the main index lacks.
    flags = []
    for url in [*conf.get("index-url", [PIP_DEFAULT_INDEX]), *conf.get("extra-index-url", [])]:
        flags += ["--extra-index-url", url]
    if find_links:
        for d in conf.get("find-links", []):
            flags += ["--find-links", d]
    if constraints:
        for c in conf.get("constraint", []):
            flags += ["--constraint", c]
    return flags + ["--index-strategy", "unsafe-best-match"]  # as pip: the best version over all sources


def env() -> dict:
    conf = pip_config()
    extra = {"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    if conf.get("cert"):
        extra["SSL_CERT_FILE"] = conf["cert"][0]
    return {**os.environ, **extra}


def exe() -> Path:
    return TOOL / "bin" / "uv"


def bootstrap() -> Path:
    """uv==VERSION in .venv/uv (installed with pip, which reads the machine's configuration)."""
    uv = exe()
    if uv.exists():
        got = subprocess.run([str(uv), "--version"], capture_output=True, text=True).stdout.split()
        if len(got) > 1 and got[1] == VERSION:
            return uv
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(TOOL)], check=True)
    subprocess.run([str(TOOL / "bin" / "python"), "-m", "pip", "install", "-q", f"uv=={VERSION}"], check=True)
    return uv


def run(args: list, extra_env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe()), *map(str, args)], env={**env(), **(extra_env or {})}, **kw)
