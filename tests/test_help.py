"""`--help` on every entry point a user runs (the stage scripts, the drivers, the benchmarks), each in the
environment its make target uses, and `make eval`'s driver answering with the suite's own stage."""

import subprocess
import sys

import pytest
from conftest import ROOT

from scripts.lib import venv

pytestmark = pytest.mark.unit

ENV = {"scripts.bench.medprompt_bench": "infer"}  # `make bench` runs it in .venv/infer; the rest run in base
ENTRY_POINTS = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts)
    for d in ("scripts", "scripts/drivers", "scripts/bench")
    for p in (ROOT / d).glob("*.py")
    if p.name not in ("__init__.py", "core.py")  # core.py: the core layer, no entry point
)


def help_of(module, *args):
    python = venv.bin_dir(ENV[module]) / "python" if module in ENV else sys.executable
    return subprocess.run(
        [str(python), "-m", module, *args, "--help"],
        cwd=ROOT,
        env=venv.env_for(ENV.get(module, "base"), {"PYTHONPATH": str(ROOT)}),
        text=True,
        capture_output=True,
        timeout=120,
    )


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_every_entry_point_prints_its_usage(module):
    p = help_of(module)
    assert p.returncode == 0 and p.stdout.startswith("usage: "), p.stderr[-2000:]


SEVEN = ("mcqa", "open", "all", "general", "safety", "openmedqa", "fields")


def test_make_eval_help_and_its_unknown_suite_error_list_all_seven_suites():
    shown = help_of("scripts.drivers.evaluate")
    assert shown.returncode == 0 and "{" + ",".join(SEVEN) + "}" in shown.stdout, shown.stdout
    p = subprocess.run([sys.executable, "-m", "scripts.drivers.evaluate", "--suite", "tabel9"], cwd=ROOT,
                       env=venv.env_for("base", {"PYTHONPATH": str(ROOT)}), text=True, capture_output=True)  # fmt: skip
    assert p.returncode == 2 and "invalid choice: 'tabel9'" in p.stderr and all(f"'{s}'" in p.stderr for s in SEVEN)


@pytest.mark.parametrize(
    "suite,stage",
    [("mcqa", "eval"), ("open", "eval"), ("fields", "fields"), ("safety", "safety"), ("openmedqa", "openmedqa")],
)
def test_make_eval_runs_the_suites_own_stage_from_the_registry(suite, stage):
    from scripts.lib import driver, stages

    assert driver.stage_of(stages.suite_stage(suite)).name == stage
