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
    if p.name != "__init__.py"
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


@pytest.mark.parametrize(
    "args,usage",
    [((), "eval.py"), (("--suite", "open"), "eval.py"), (("--suite", "fields"), "fields.py"),
     (("--suite=safety",), "safety.py"), (("--suite", "openmedqa"), "openmedqa.py")],
)  # fmt: skip
def test_make_eval_runs_the_suites_own_stage(args, usage):
    p = help_of("scripts.drivers.evaluate", *args)
    assert p.returncode == 0 and p.stdout.startswith(f"usage: {usage} "), p.stdout[:300] + p.stderr[-2000:]
