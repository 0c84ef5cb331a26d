"""Hostile or mistyped input (issue 23): a make variable is never run as code, and reaches its script as one
literal argument."""

import subprocess

import pytest
from conftest import ROOT

pytestmark = pytest.mark.unit


def make(*args, cwd=ROOT):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("value", ["x; touch {f} #", "$(shell touch {f})", "`touch {f}`", "$$(touch {f})"])
def test_a_make_variable_is_never_run_and_arrives_as_one_literal_argument(tmp_path, value):
    planted = tmp_path / "planted"
    value = value.format(f=planted)
    shown = make("-n", "verify", f"MODEL={value}")  # make -n evaluates no value either
    assert shown.returncode == 0 and not planted.exists(), shown.stdout + shown.stderr
    p = make("verify", "PY=printf '[%s]\\n'", f"MODEL={value}", "SUITE=fields")  # PY: print the argv it would get
    assert not planted.exists(), p.stdout + p.stderr
    assert f"[--model]\n[{value}]\n[--suite]\n[fields]" in p.stdout, p.stdout + p.stderr  # as typed, to the letter
