"""OpenMedQA (P-CR Table 5): the judge-output parser on canned outputs, accuracy with unparsed verdicts counted as
wrong, the dataset layout, the whole path on the tiny kit (model and judge), a judge behind an OpenAI-compatible
server, and verify against Table 5."""

import json

import pytest
import yaml
from conftest import MODEL, ROOT, run_py

from evals import fixtures
from evals import openmedqa as om


@pytest.mark.parametrize(
    "text, verdict",
    [
        ("<VERDICT>1</VERDICT>", 1),
        ("The answers agree.\n<verdict> 0 </verdict>", 0),
        ("<think>Maybe <VERDICT>0</VERDICT>? No, they match.</think>\n<VERDICT>1</VERDICT>", 1),
        ("<VERDICT>1</VERDICT> ... <VERDICT>1</VERDICT>", 1),
        ("<think>the generated answer names the same drug", None),  # cut off while thinking
        ("<VERDICT>1</VERDICT> or rather <VERDICT>0</VERDICT>", None),
        ("<VERDICT>yes</VERDICT>", None),
        ("<VERDICT>2</VERDICT>", None),
        ("1", None),
        ("", None),
        ("correct", None),
    ],
)
@pytest.mark.unit
def test_the_judges_verdict_parses_or_is_unparsed(text, verdict):
    assert om.parse(text) == verdict


@pytest.mark.unit
def test_accuracy_counts_unparsed_as_wrong_and_the_drop_is_open_minus_mc():
    acc = om.accuracy([1, 1, 0, None])
    assert acc == {**acc, "questions": 4, "correct": 2, "unparsed": 1, "acc": 50.0}
    res = om.results_file(acc, (62.0, 1.5), {})["results"]
    assert res["openmedqa_drop"]["acc,none"] == pytest.approx(-12.0)
    assert res["openmedqa_drop"]["acc_stderr,none"] == pytest.approx((acc["stderr"] ** 2 + 1.5**2) ** 0.5)
    assert om.results_file(acc, (None, None), {})["results"]["openmedqa_drop"]["acc,none"] is None
    assert om.accuracy([None, None])["acc"] == 0.0


@pytest.mark.unit
def test_the_layout_loads_keyed_or_listed_and_rejects_other_rows(tmp_path):
    f = tmp_path / "OpenMedQA.json"
    rows = fixtures.openmedqa_rows(3)
    for data in (rows, list(rows.values())):
        f.write_text(json.dumps(data))
        assert [r["id"] for r in om.load(f)] == [f"medqa_4opt_test_{i}" for i in range(3)]
    f.write_text(json.dumps([{"id": "x", "question": "q", "options": {"A": "a"}}]))
    with pytest.raises(om.OpenMedQAError, match="row 0 is not an OpenMedQA row"):
        om.load(f)


def stage(runs, *extra):  # noqa: F811
    return run_py(
        "scripts.openmedqa", "--profile", "cpu-tiny", "--local", "--runs", runs, "--model", MODEL,
        "--max-tokens", 16, *extra,
    )  # fmt: skip


def mcqa_results(tmp_path, acc=0.6):
    f = tmp_path / "results_mcqa.json"
    f.write_text(json.dumps({"results": {"medqa_4options": {"acc,none": acc, "acc_stderr,none": 0.0137}}}))
    return f


@pytest.mark.chain
def test_the_tiny_kit_runs_the_whole_path_and_no_malformed_verdict_counts(runs, tmp_path):  # noqa: F811
    stage(runs, "--mcqa-results", mcqa_results(tmp_path))
    out = runs / "eval" / "meta-llama_Llama-3.1-8B-Instruct" / "openmedqa" / "out"
    per = [json.loads(x) for x in (out / "per_question.jsonl").read_text().splitlines()]
    assert len(per) == 6 and sum(bool(p["response"]) for p in per) >= 3  # the model under test answered
    assert all(p["verdict"] is None for p in per)  # the random judge writes no verdict
    res = json.loads((out / "results" / "results_openmedqa.json").read_text())["results"]
    assert res["openmedqa_open"] == {**res["openmedqa_open"], "acc,none": 0.0, "unparsed,none": 6}
    assert res["openmedqa_mc"]["acc,none"] == pytest.approx(60.0)
    assert res["openmedqa_drop"]["acc,none"] == pytest.approx(-60.0)
    v = run_py("scripts.verify", "--runs", runs, "--model", MODEL, "--suite", "openmedqa", "--out", tmp_path / "v",
               check=False)  # fmt: skip
    assert v.returncode == 1 and "P-CR Table 5" in v.stdout and "FAIL" in v.stdout


@pytest.mark.chain
def test_a_judge_behind_an_openai_compatible_server(runs, tmp_path, server):  # noqa: F811
    url, seen, state = server
    state["reply"] = lambda body: (
        "<think>compare</think><VERDICT>1</VERDICT>" if "Diagnosis 0" in body["messages"][-1]["content"] else "no tag"
    )
    stage(runs, "--judge", "deepseek-ai/DeepSeek-R1", "--judge-url", url, "--limit", 3)
    out = runs / "eval" / "meta-llama_Llama-3.1-8B-Instruct" / "openmedqa" / "out"
    res = json.loads((out / "results" / "results_openmedqa.json").read_text())["results"]
    assert res["openmedqa_open"]["acc,none"] == pytest.approx(100 / 3) and res["openmedqa_open"]["unparsed,none"] == 2
    assert len(seen) == 3 and {s["model"] for s in seen} == {"deepseek-ai/DeepSeek-R1"}
    assert seen[0]["temperature"] == 0.0 and seen[0]["max_tokens"] == om.JUDGE_MAX_TOKENS
    assert all("Ground truth: Diagnosis" in s["messages"][-1]["content"] for s in seen)


@pytest.mark.unit
def test_verify_passes_the_reported_row_and_fails_a_shifted_one(tmp_path):
    row = yaml.safe_load((ROOT / "results" / "reported.yaml").read_text())["tables"]["pcr_table5"]["settings"]
    row = row["0-shot"]["Llama3.1-Aloe-Beta-8B"]
    out = {}
    for shift in (0.0, 5.0):
        f = tmp_path / f"results_{shift}.json"
        acc = om.accuracy([1] * round(row["open"] * 12.72 + shift * 12.72) + [0] * 1272)
        acc = {**acc, "acc": row["open"] + shift, "stderr": 1.4}
        f.write_text(json.dumps(om.results_file(acc, (row["mc"], 1.34), {})))
        out[shift] = run_py("scripts.verify", "--model", "HPAI-BSC/Llama3.1-Aloe-Beta-8B", "--suite", "openmedqa",
                            "--results", f, "--out", tmp_path / str(shift), check=False)  # fmt: skip
    assert out[0.0].returncode == 0 and "3 of 3 within tolerance" in out[0.0].stdout, out[0.0].stdout
    assert out[5.0].returncode == 1 and "1 of 3 within tolerance" in out[5.0].stdout
