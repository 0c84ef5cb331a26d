"""make verify BASELINE=: the gain over the base Instruct model reproduces when a harness offset shifts both
models alike (the absolute check fails there), and fails when only one model moves."""

import json

import pytest
import yaml
from conftest import ROOT, SIZES, run_py

from data_prep.benchmarks import MMLU_MEDICAL

pytestmark = pytest.mark.unit

ROWS = yaml.safe_load((ROOT / "results" / "reported.yaml").read_text())["tables"]["table9"]["settings"]["0-shot"]


def results_for(model: str, shift: float = 0.0) -> dict:
    """lm-eval results reproducing a Table 9 row (PubMedQA solved from MultiMedQA), every task moved by shift."""
    rep = ROWS[model]
    acc = {
        "medmcqa": rep["medmcqa"],
        "medqa_4options": rep["medqa_4options"],
        "careqa_en": rep["careqa_en"],
        **{t: rep["mmlu_medical"] for t in MMLU_MEDICAL},
    }
    mmlu_n = sum(SIZES[t] for t in MMLU_MEDICAL)
    acc["pubmedqa"] = (
        rep["multimedqa"] * (4183 + 1273 + 500 + mmlu_n)
        - 4183 * rep["medmcqa"]
        - 1273 * rep["medqa_4options"]
        - mmlu_n * rep["mmlu_medical"]
    ) / 500
    return {
        "results": {t: {"acc,none": (v + shift) / 100, "acc_stderr,none": 0.007} for t, v in acc.items()},
        "n-samples": {t: {"original": n, "effective": n} for t, n in SIZES.items()},
    }


def verify_gain(tmp_path, aloe_shift, base_shift):
    files = []
    for name, model, shift in (
        ("aloe", "Llama3.1-Aloe-Beta-8B", aloe_shift),
        ("base", "Llama-3.1-8B-Instruct", base_shift),
    ):
        files.append(tmp_path / f"results_{name}.json")
        files[-1].write_text(json.dumps(results_for(model, shift)))
    p = run_py(
        "scripts.verify",
        "--model",
        "HPAI-BSC/Llama3.1-Aloe-Beta-8B",
        "--results",
        files[0],
        "--baseline",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--baseline-results",
        files[1],
        "--out",
        tmp_path / "report",
        check=False,
    )
    return p, json.loads((tmp_path / "report" / "verify.json").read_text())["rows"]


def test_a_harness_offset_common_to_both_models_fails_absolute_but_the_gain_reproduces(tmp_path):
    p, rows = verify_gain(tmp_path, -3.0, -3.0)
    assert p.returncode == 0, p.stdout + p.stderr
    assert all(r["result"] == "FAIL" and r["gain result"] == "pass" for r in rows), rows
    medqa = next(r for r in rows if r["column"] == "medqa_4options")
    assert (
        medqa["reported gain"] == round(64.65 - 63.71, 3)
        and abs(medqa["measured gain"] - medqa["reported gain"]) < 1e-6
    )
    assert "6 of 6 gains within tolerance" in p.stdout and "gain over Llama-3.1-8B-Instruct" in p.stdout


def test_a_gain_that_does_not_reproduce_fails_even_when_absolutes_pass(tmp_path):
    p, rows = verify_gain(tmp_path, 0.0, 3.0)  # the baseline measures 3 points high: the gain vanishes
    assert p.returncode == 1
    assert all(r["result"] == "pass" and r["gain result"] == "FAIL" for r in rows), rows
