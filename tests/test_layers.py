"""The layers of DESIGN.md 4a hold (.importlinter, checked by `make lint`), and an import upward breaks them."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.unit
PACKAGES = ("scripts", "data_prep", "medprompt", "evals")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"  # import-linter, in the base environment


def lint_imports(cwd: Path):
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(cwd)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_keeps_its_layers():
    p = lint_imports(ROOT)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    assert "0 broken" in p.stdout


@pytest.mark.parametrize(
    "planted, named",
    [
        ("from scripts.lib import recipe  # planted", "scripts.lib.recipe"),  # a library importing orchestration
        ("import medprompt.parse  # planted", "medprompt.parse"),  # data_prep (below medprompt) importing it
    ],
)
def test_an_upward_import_breaks_the_contracts(tmp_path, planted, named):
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    io = tmp_path / "data_prep" / "io.py"
    io.write_text(io.read_text() + f"\n{planted}\n")
    p = lint_imports(tmp_path)
    assert p.returncode != 0, p.stdout[-4000:]
    assert "data_prep.io" in p.stdout and named in p.stdout, p.stdout[-4000:]


def test_a_cycle_in_the_orchestration_helpers_breaks_the_contracts(tmp_path):
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    stages = tmp_path / "scripts" / "lib" / "stages.py"  # the registry imports nothing of ours
    stages.write_text(stages.read_text() + "\nfrom . import manifest  # planted: manifest -> stages -> manifest\n")
    p = lint_imports(tmp_path)
    assert p.returncode != 0 and "scripts.lib.stages -> scripts.lib.manifest" in p.stdout, p.stdout[-4000:]


def test_every_orchestration_helper_has_its_place_in_the_layers():
    """A new scripts/lib module must be placed in .importlinter's orchestration-lib layers (else a cycle through it
    would go unnoticed)."""
    text = (ROOT / ".importlinter").read_text().split("[importlinter:contract:orchestration-lib]")[1]
    placed = {m.strip() for line in text.split("layers =")[1].splitlines() for m in line.split("|") if m.strip()}
    modules = {p.stem for p in (ROOT / "scripts" / "lib").glob("*.py")} - {"__init__"}
    assert modules <= placed, modules - placed
