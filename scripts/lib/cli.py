"""The arguments every stage script shares, and where its outputs go."""

import argparse
from pathlib import Path

from . import recipe as rc

DEFAULT_RECIPE = "recipes/aloe-beta-8b"


def stage_parser(doc: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default=DEFAULT_RECIPE, help=f"recipe folder (default {DEFAULT_RECIPE})")
    ap.add_argument("--profile", help="overlay from recipes/profiles/ (e.g. cpu-tiny)")
    ap.add_argument(
        "--world-size", type=int, help="GPUs of this run (default: the recipe's published hardware, or the profile's)"
    )
    ap.add_argument("--runs", default=str(rc.ROOT / "runs"), help="root of run outputs (default runs/)")
    ap.add_argument("--force", action="store_true", help="rerun even if a finished run has the same inputs")
    return ap


def load(a) -> "rc.Recipe":
    kit = Path(a.runs) / "tiny-kit"
    try:
        return rc.load(a.recipe, profile=a.profile, world_size=a.world_size, kit=kit)
    except rc.RecipeError as e:
        raise SystemExit(f"recipe error:\n{e}")


def run_dir(a, r) -> Path:
    return Path(a.runs) / r.name


def recipe_info(r, stem: str, rendered) -> dict:
    from .manifest import sha256_json

    return {"path": r.rel(stem), "profile": r.profile, "sha256": sha256_json(rendered), "rendered": rendered}


def fail_on(problems):
    if problems:
        raise SystemExit("recipe check failed before any compute:\n" + "\n".join(f"  {p}" for p in problems))
