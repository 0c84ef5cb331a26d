"""The evaluation suites run offline: every task definition (Table 9 upstream tasks and the repository's
open-ended Table 11-12 tasks) on the tiny model against local fixtures in each dataset's schema."""
import json
import math

from conftest import ROOT, run_py
from scripts.lib import manifest as mf
from scripts.lib import recipe as rc


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


def test_verify_reads_the_smoke_eval_and_reports_every_column(chain, tmp_path):
    runs, run, _ = chain
    p = run_py("scripts.verify", "--profile", "cpu-tiny", "--runs", runs, "--reported",
               ROOT / "results/tiny_expected.yaml", "--table", "fixture", "--model", "tiny", "--out", tmp_path)
    rows = json.loads((tmp_path / "verify.json").read_text())["rows"]
    assert {r["column"] for r in rows} == {"avg", "multimedqa", "medmcqa", "medqa_4options", "pubmedqa",
                                           "mmlu_medical", "careqa_en"}
    assert "NOT the paper" in (ROOT / "results/tiny_expected.yaml").read_text() and "within tolerance" in p.stdout
