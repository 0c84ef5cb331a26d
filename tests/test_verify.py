"""make verify: passes numbers within tolerance, fails (naming the task) outside it, gives clear errors for a
missing task or a broken results file, and shows a column marked not comparable with its reason, never decided."""

import json

import pytest
import yaml
from conftest import ROOT, SIZES, run_py

from data_prep.benchmarks import MMLU_MEDICAL

pytestmark = pytest.mark.unit


def aloe_8b_results(shift=None):
    """An lm-eval results file whose numbers reproduce Table 9's Aloe-Beta-8B row."""
    acc = {"medmcqa": 59.57, "medqa_4options": 64.65, "careqa_en": 70.77, **{t: 76.50 for t in MMLU_MEDICAL}}
    mmlu_n = sum(SIZES[t] for t in MMLU_MEDICAL)
    acc["pubmedqa"] = (64.51 * (4183 + 1273 + 500 + mmlu_n) - 4183 * 59.57 - 1273 * 64.65 - mmlu_n * 76.50) / 500
    for task, delta in (shift or {}).items():
        acc[task] += delta
    return {
        "results": {t: {"acc,none": v / 100, "acc_stderr,none": 0.007} for t, v in acc.items()},
        "n-samples": {t: {"original": n, "effective": n} for t, n in SIZES.items()},
    }


def verify(tmp_path, results, *extra):
    f = tmp_path / "results_x.json"
    f.write_text(results if isinstance(results, str) else json.dumps(results))
    return run_py(
        "scripts.verify",
        "--model",
        "HPAI-BSC/Llama3.1-Aloe-Beta-8B",
        "--results",
        f,
        "--out",
        tmp_path / "report",
        *extra,
        check=False,
    )


def test_numbers_within_tolerance_pass(tmp_path):
    p = verify(tmp_path, aloe_8b_results())
    assert p.returncode == 0, p.stdout + p.stderr
    assert "6 of 6 within tolerance" in p.stdout
    assert (tmp_path / "report" / "chart.png").stat().st_size > 1000
    rows = json.loads((tmp_path / "report" / "verify.json").read_text())["rows"]
    assert {r["column"] for r in rows} == {
        "avg",
        "multimedqa",
        "medmcqa",
        "medqa_4options",
        "mmlu_medical",
        "careqa_en",
    }
    assert all(abs(r["delta"]) < 0.02 for r in rows)


def test_a_number_out_of_tolerance_fails_naming_the_task(tmp_path):
    p = verify(tmp_path, aloe_8b_results(shift={"medqa_4options": -5.0}))
    assert p.returncode == 1
    fails = [line for line in p.stdout.splitlines() if line.rstrip().endswith("FAIL")]
    assert any(line.startswith("medqa_4options") for line in fails)
    assert not any(line.startswith("medmcqa") for line in fails)
    assert "FAIL" in (tmp_path / "report" / "report.md").read_text()


def test_a_missing_task_is_named(tmp_path):
    res = aloe_8b_results()
    del res["results"]["mmlu_anatomy"]
    p = verify(tmp_path, res)
    assert p.returncode != 0
    assert "mmlu_anatomy" in p.stderr and "mmlu_medical" in p.stderr


@pytest.mark.parametrize(
    "text, message",
    [('{"results": {"medmcqa": ', "not valid JSON (line 1"), ('{"config": {}}', "no 'results' mapping")],
)
def test_a_broken_results_file_is_named(tmp_path, text, message):
    p = verify(tmp_path, text)
    assert p.returncode != 0 and message in p.stderr and "results_x.json" in p.stderr


def table11a(tmp_path, drop=(), metric=None, **changes):
    """Table 11a's Aloe-Beta-8B row as measured results, each column under its metric (`measure`: ROUGE-1, and
    accuracy for its two classification columns; `metric` for all), less drop, and reported.yaml with the
    table's keys changed."""
    reported = yaml.safe_load((ROOT / "results" / "reported.yaml").read_text())
    tab = reported["tables"]["table11a"]
    row = {
        c: v + 30 * (c == "med_text_classification")
        for c, v in tab["settings"]["0-shot"]["Llama3.1-Aloe-Beta-8B"].items()
    }
    tab.update(changes)
    (tmp_path / "reported.yaml").write_text(yaml.safe_dump(reported))
    own = tab["measure"]["metrics"]
    res = {
        f"aloe_{c}": {f"{m},none": v / 100, f"{m}_stderr,none": 0.001}
        for c, v in row.items()
        if c not in drop and (m := metric or own.get(c, "rouge1"))
    }
    return verify(tmp_path, {"results": res}, "--table", "table11a", "--reported", tmp_path / "reported.yaml")


def test_table_11s_accuracy_columns_are_read_as_accuracy_and_its_rouge_columns_as_rouge(tmp_path):
    p = table11a(tmp_path)
    assert p.returncode == 0 and "5 of 5 within tolerance" in p.stdout, p.stdout + p.stderr
    rows = {r["column"]: r for r in json.loads((tmp_path / "report" / "verify.json").read_text())["rows"]}
    assert rows["med_transcriptions"]["measured"] == pytest.approx(33.03) and rows["olaph"]["result"] == "pass"
    p = table11a(tmp_path, metric="rouge1")  # an accuracy under ROUGE-1's name is not the column's number
    assert p.returncode == 1 and "aloe_med_transcriptions" in p.stdout + p.stderr, p.stdout + p.stderr


def test_a_column_not_comparable_shows_its_reason_and_never_passes_or_fails(tmp_path):
    why = "not comparable with Table 11 (different split and choices)"
    p = table11a(tmp_path)  # med_text_classification measured 30 points off
    assert p.returncode == 0, p.stdout + p.stderr
    assert "5 of 5 within tolerance; 1 not comparable" in p.stdout
    assert any(x.startswith("med_text_classification") and x.rstrip().endswith(why) for x in p.stdout.splitlines())
    rows = {r["column"]: r for r in json.loads((tmp_path / "report" / "verify.json").read_text())["rows"]}
    assert rows["med_text_classification"]["result"] == why and rows["med_text_classification"]["delta"] == 30
    assert table11a(tmp_path, not_comparable={}).returncode == 1  # without the mark, the same number fails
    p = table11a(tmp_path, drop=["med_text_classification"])  # and its task may be missing
    assert p.returncode == 0 and "5 of 5 within tolerance; 1 not comparable" in p.stdout, p.stdout + p.stderr
    p = table11a(tmp_path, not_comparable={"med_text_clasification": why})
    assert p.returncode != 0 and "table11a not_comparable names no column of it: med_text_clasification" in p.stderr


def test_the_charts_error_bars_stay_within_the_tables_scale():
    """2% of 10 questions: the harness's 1.96 x stderr reaches below 0, Wilson's interval does not; an aggregate's
    interval is the report's (Wilson at its effective size); without n the stderr is clipped; a table in 0-1 (ASR)
    stays within 0-1; a difference (OpenMedQA's drop) may go below 0 but not below -100."""
    from evals.aggregates import Score, with_aggregates
    from scripts.lib.report.stats import intervals, wilson
    from scripts.verify import error_bars

    def row(col, reported, score):
        return [col, col, reported, score.value, score.stderr, None, 2.0, True]

    low = Score(2.0, 100 * (0.02 * 0.98 / 9) ** 0.5, 10)
    assert low.value - 1.96 * low.stderr < 0  # what the chart drew before
    subjects = {t: Score(100 * k / 20, 10.0, 20) for t, k in zip(MMLU_MEDICAL, [1, 19, 2, 18, 0, 20], strict=True)}
    scores = with_aggregates({"medqa_4options": low, "careqa_en": Score(99.0, 3.0, None), **subjects})
    rows = [
        row("medqa_4options", 5.0, low),
        row("careqa_en", 98.0, scores["careqa_en"]),
        row("mmlu_medical", 50.0, scores["mmlu_medical"]),
        ["avg", "avg", 40.0, None, None, None, 2.0, False],
    ]
    medqa, careqa, mmlu, avg = error_bars(rows, scores, "acc")
    assert medqa == pytest.approx(wilson(0.2, 10)) and medqa[0] >= 0.0
    assert careqa == pytest.approx((99.0 - 1.96 * 3.0, 100.0))  # no n: the stderr, clipped at 100
    k = {t: (s.value / 100 * 20, 20) for t, s in subjects.items()}
    assert mmlu == pytest.approx(intervals(k)["mmlu_medical"]["ci"]) and 0.0 <= mmlu[0] < 50.0 < mmlu[1] <= 100.0
    assert avg is None
    asr = Score(0.02, (0.02 * 0.98 / 10) ** 0.5, 10)
    (bar,) = error_bars([row("seval_style_cou", 0.05, asr)], {"seval_style_cou": asr}, "asr")
    assert bar == pytest.approx(tuple(x / 100 for x in wilson(0.2, 10))) and 0.0 <= bar[0] < bar[1] <= 1.0
    drop, rouge = Score(-99.0, 5.0), Score(99.5, 2.0, 10)
    assert error_bars([row("drop", -20.0, drop)], {"drop": drop}, "acc") == [pytest.approx((-100.0, -89.2))]
    assert error_bars([row("olaph", 30.0, rouge)], {"olaph": rouge}, "rouge1") == [pytest.approx((95.58, 100.0))]
