"""The evaluation suites run offline: every task definition (Table 9 upstream tasks and the repository's
open-ended Table 11-12 tasks) on the tiny model against local fixtures in each dataset's schema; verify holds
the tiny model to its measured numbers and fails a broken model or an incomplete results file."""

import json
import math
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_py

from scripts.lib import manifest as mf
from scripts.lib import recipe as rc
from scripts.lib import venv
from scripts.lib.stages import model_eval_dir

pytestmark = pytest.mark.chain

EXPECTED = ROOT / "results" / "tiny_expected.yaml"


def test_open_suite_runs_offline_with_its_own_metrics(chain):
    runs, run, _ = chain
    run_py("scripts.eval", "--profile", "cpu-tiny", "--runs", runs, "--local", "--suite", "open")
    m = mf.read(run / "eval-open")
    expected = rc.load(ROOT / "recipes/aloe-beta-8b").files["eval"]["open_tasks"]
    results = json.loads(next((run / "eval-open" / "lm_eval").rglob("results_*.json")).read_text())["results"]
    assert sorted(results) == sorted(f"aloe_local_{t}" for t in expected)
    for task, vals in results.items():
        if task.endswith("_perplexity"):
            assert vals["word_perplexity,none"] > 1, task
        elif task.endswith("med_text_classification"):
            assert 0 <= vals["acc,none"] <= 1
        else:
            assert 0 <= vals["rouge1,none"] <= 1 and not math.isnan(vals["rouge1,none"]), task
    assert len(list((run / "eval-open" / "lm_eval").rglob("samples_*.jsonl"))) == len(expected)
    assert m["recipe"]["rendered"]["suite"] == "open" and m["tools"]["lm_eval"] == "0.4.13"


def verify_tiny(runs, out, *extra):
    return run_py(
        "scripts.verify",
        "--profile",
        "cpu-tiny",
        "--runs",
        runs,
        "--reported",
        EXPECTED,
        "--table",
        "fixture",
        "--model",
        "tiny",
        "--out",
        out,
        *extra,
        check=False,
    )


def test_verify_passes_the_smoke_eval_on_its_measured_numbers(chain, tmp_path):
    runs, _, _ = chain
    p = verify_tiny(runs, tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = json.loads((tmp_path / "verify.json").read_text())["rows"]
    floor = yaml.safe_load(EXPECTED.read_text())["tables"]["fixture"]["measure"]["floor"]
    assert {r["column"] for r in rows} == {
        "avg",
        "multimedqa",
        "medmcqa",
        "medqa_4options",
        "pubmedqa",
        "mmlu_medical",
        "careqa_en",
    }
    assert all(r["tolerance"] == floor <= 2.5 and abs(r["delta"]) < 0.01 for r in rows), rows  # deterministic


def test_verify_fails_on_a_model_with_shuffled_weights(chain, tmp_path):
    runs, run, _ = chain
    model = tmp_path / "shuffled"
    shutil.copytree(mf.read(run / "dpo")["outputs"]["model"]["path"], model)
    assert venv.run("eval", ["plant_fault.py", model, "shuffle"]).returncode == 0
    run_py("scripts.eval", "--profile", "cpu-tiny", "--runs", runs, "--local", "--model", model)
    p = verify_tiny(runs, tmp_path / "report", "--results", model_eval_dir(runs, str(model), "mcqa") / "lm_eval")
    assert p.returncode == 1 and "FAIL" in p.stdout, p.stdout + p.stderr


def test_verify_fails_on_a_results_file_with_a_task_missing(chain, tmp_path):
    _, run, _ = chain
    results = json.loads(
        next(Path(mf.read(run / "eval-mcqa")["outputs"]["lm_eval"]["path"]).rglob("results_*.json")).read_text()
    )
    dropped = next(t for t in results["results"] if t.endswith("mmlu_anatomy"))
    del results["results"][dropped]
    (tmp_path / "results_x.json").write_text(json.dumps(results))
    p = verify_tiny(run.parent, tmp_path / "report", "--results", tmp_path / "results_x.json")
    assert p.returncode != 0 and "mmlu_anatomy" in p.stderr and "mmlu_medical" in p.stderr, p.stderr


def test_diff_eval_names_a_planted_chat_template_and_counts_the_flipped_questions_exactly(chain, tmp_path):
    # the smoke model evaluated again, as the eval stage ran it but with its chat template applied
    _, run, _ = chain
    m = mf.read(run / "eval-mcqa")
    s, model = m["recipe"]["rendered"], mf.read(run / "dpo")["outputs"]["model"]["path"]
    cmd = ["lm-eval", "run", "--model", "hf", "--model_args", f"pretrained={model},dtype=float32", "--device", "cpu",
           "--batch_size", s["batch_size"], "--tasks", ",".join(m["metrics"]), *s["args"], "--seed", s["seed"],
           "--output_path", tmp_path / "templated", "--log_samples", "--include_path", run / "eval-mcqa" / "tasks",
           "--apply_chat_template"]  # fmt: skip
    assert venv.run("eval", cmd, log=tmp_path / "lm_eval.log").returncode == 0, (tmp_path / "lm_eval.log").read_text()[
        -3000:
    ]
    run_py(
        "scripts.drivers.diff_eval", "--a", run / "eval-mcqa", "--b", tmp_path / "templated", "--out", tmp_path / "d"
    )
    d = json.loads((tmp_path / "d.json").read_text())
    chat = next(x for x in d["settings"] if "chat template" in x["setting"])
    assert chat["status"] == "differs" and chat["a"] in ("off", None) and chat["b"].startswith("sha256")

    # the flips, counted here from the two samples files directly
    def correct(folder):
        out = {}
        for f in Path(folder).rglob("samples_*.jsonl"):
            task = f.name.split("_20")[0].removeprefix("samples_")
            for line in f.read_text().splitlines():
                row = json.loads(line)
                out[(task, row["doc_id"])] = row["acc"]
        return out

    a, b = correct(run / "eval-mcqa" / "lm_eval"), correct(tmp_path / "templated")
    assert a.keys() == b.keys() and len(a) == 112
    assert sum(t["b"] for t in d["tasks"]) == sum(a[k] > b[k] for k in a) == d["pooled"]["b"]
    assert sum(t["c"] for t in d["tasks"]) == sum(a[k] < b[k] for k in a) == d["pooled"]["c"]
    assert sum(len(t["flips"]) for t in d["tasks"]) == sum(a[k] != b[k] for k in a) > 0
