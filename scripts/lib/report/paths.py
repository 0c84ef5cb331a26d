"""Paths a run records, read where the run now lies, and the ids the page gives them."""

import re
from pathlib import Path

from scripts import core


def slug(text) -> str:
    """A piece of an HTML id: letters, digits, '_', '.' and '-' only."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text))


def local(path, run: Path) -> Path:
    """A path the run recorded, where it lies now: as recorded (a relative one from the repository root), else under
    the run folder (the run was moved)."""
    p = Path(path)
    p = p if p.is_absolute() else core.ROOT / p
    if p.exists() or run.name not in p.parts:
        return p
    return run.joinpath(*p.parts[len(p.parts) - p.parts[::-1].index(run.name) :])


def inside(path, run: Path) -> bool:
    """Whether a recorded path lies in the run folder (where it now lies)."""
    return local(path, run).resolve().is_relative_to(run.resolve())


def shown(path, run: Path) -> str:
    """A path as the page shows it: relative to the run folder where it lies inside it."""
    p = local(path, run)
    return str(p.relative_to(run)) if p.is_relative_to(run) else str(path)
