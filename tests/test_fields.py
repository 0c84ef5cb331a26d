"""Accuracy per medical field (P-BETA Table 10): the labeller's parser on canned outputs, accuracy per field with the
unlabelled counted apart, the authors' labels file, the stage on lm-eval samples with a labels file (and docs logged
without a question), a labeller behind an OpenAI-compatible server (and its per-question cache), the tiny kit as the
labeller, and verify against Table 10."""

import json

import pytest
import yaml
from conftest import MODEL, ROOT, run_py

from evals import fields as fl

OUT = "eval/meta-llama_Llama-3.1-8B-Instruct/fields"
# (task as lm-eval names its samples file, question, acc); the server's labeller answers by the question's word
SAMPLES = [
    ("medmcqa", "Which valve lesion follows rheumatic heart disease?", 1.0),
    ("medmcqa", "Which valve lesion follows rheumatic heart disease?", 0.0),  # the same question twice: one label
    ("medmcqa", "Which drug treats heart failure with reduced ejection fraction?", 1.0),
    ("aloe_local_medqa_4options", "A kidney biopsy shows crescents. What is the diagnosis?", 0.0),
    ("careqa_en", "Which skin lesion is a melanoma?", 1.0),
    ("mmlu_anatomy", "What is the capital of France?", 1.0),
    ("aloe_pubmedqa", "Does a kidney transplant improve survival?", 1.0),  # not a labelled task: left out
]
REPLIES = {"heart": "The heart. The category is: Cardiology", "kidney": "Renal. The category is: Nephrology",
           "skin": "The category is: Derm", "France": "Not medical. The category is: None"}  # fmt: skip


@pytest.mark.parametrize(
    "text, field",
    [
        ("The heart is involved. The category is: Cardiology", "Cardiology"),
        ("The category is: Oncology ... on reflection, The category is: Hematology", "Hematology"),
        ("The category is: Endocrinology.", "Endocrinology"),
        ("Unrelated. The category is: None", fl.NONE),
        ("The category is: Immunology", None),  # the authors' own few-shot answer, not on the list
        ("the category is: cardiology", None),
        ("The category is: **Cardiology**", None),
        ("Cardiology", None),
        ("", None),
    ],
)
@pytest.mark.unit
def test_the_labellers_reply_parses_to_a_field_on_the_list_or_is_unlabelled(text, field):
    assert fl.parse(text) == field


@pytest.mark.unit
def test_the_prompt_is_the_authors_list_and_shots_then_the_question():
    m = fl.messages("Q?")
    assert len(fl.FIELDS) == 36 and "None,Cardiology,Hematology," in m[0]["content"]
    assert [x["role"] for x in m[1:-1]] == ["user", "assistant"] * 7 and m[-1] == {"role": "user", "content": "Q?"}


@pytest.mark.unit
def test_accuracy_per_field_counts_none_and_unlabelled_apart():
    rows = [{"field": "Cardiology", "acc": a} for a in (1.0, 1.0, 0.0, 1.0)]
    rows += [{"field": "Nephrology", "acc": 0.0}, {"field": fl.NONE, "acc": 1.0}, {"field": None, "acc": 1.0}]
    acc = fl.accuracy(rows)
    assert (acc["samples"], acc["none"], acc["unlabelled"]) == (7, 1, 1)
    assert acc["fields"]["Cardiology"] == {"samples": 4, "correct": 3, "acc": 0.75, "stderr": pytest.approx(0.25)}
    assert acc["fields"]["Nephrology"]["acc"] == 0.0 and acc["fields"]["Oncology"]["acc"] is None
    assert sum(v["samples"] for v in acc["fields"].values()) == 5
    res = fl.results_file(acc, {})
    assert res["results"]["field_cardiology"] == {"acc,none": 0.75, "acc_stderr,none": pytest.approx(0.25)}
    assert res["n-samples"]["field_cardiology"]["effective"] == 4 and res["fields"]["unlabelled"] == 1


@pytest.mark.unit
def test_the_authors_labels_file_reads_listed_or_as_lines_and_rejects_other_records(tmp_path):
    recs = [
        {"dataset": "medmcqa_validation", "question": "Q1  heart?", "medical_field": "Cardiology",
         "cot_medical_field": "The category is: Cardiology"},
        {"dataset": "CareQA", "question": "Q2", "medical_field": "None", "cot_medical_field": "I cannot tell."},
        {"dataset": "CareQA", "question": "Q3", "medical_field": "None", "cot_medical_field": "The category is: None"},
        {"dataset": "mmlu_anatomy", "question": "Q4", "medical_field": "Anatomy"},
        {"dataset": "mmlu_anatomy", "question": "Q5", "medical_field": "Immunology"},
    ]  # fmt: skip
    f = tmp_path / "medical_fields.json"
    for text in (json.dumps(recs), "\n".join(map(json.dumps, recs))):
        f.write_text(text)
        assert fl.load_labels(f) == {
            fl.key("medmcqa", "Q1 heart?"): "Cardiology",
            fl.key("CareQA", "Q2"): None,  # their "None" for a reply without a category: unlabelled here
            fl.key("CareQA", "Q3"): fl.NONE,
            fl.key("mmlu_anatomy", "Q4"): "Anatomy",
            fl.key("mmlu_anatomy", "Q5"): None,
        }
    f.write_text(json.dumps([{"question": "Q1", "medical_field": "Cardiology"}]))
    with pytest.raises(fl.FieldsError, match="record 0 is not a medical-fields record"):
        fl.load_labels(f)


def lm_eval_samples(tmp_path):
    """An lm-eval --log_samples folder in its schema: samples_<task>_<date>.jsonl, one line per doc."""
    d = tmp_path / "lm_eval" / "model"
    d.mkdir(parents=True, exist_ok=True)
    by_task = {}
    for task, q, acc in SAMPLES:
        by_task.setdefault(task, []).append((q, acc))
    for task, rows in by_task.items():
        lines = []
        for i, (q, acc) in enumerate(rows):
            doc = {"sent1": q, "ending0": "a"} if "medqa" in task else {"question": q, "opa": "a"}
            lines.append(json.dumps({"doc_id": i, "doc": doc, "target": "0", "filter": "none", "metrics": ["acc"],
                                     "acc": acc}))  # fmt: skip
        (d / f"samples_{task}_2026-01-01T00-00-00.000001.jsonl").write_text("\n".join(lines) + "\n")
    return d.parent


def stage(runs, tmp_path, *extra, check=True):  # noqa: F811
    return run_py(
        "scripts.fields", "--profile", "cpu-tiny", "--runs", runs, "--model", MODEL,
        "--samples", lm_eval_samples(tmp_path), *extra, check=check,
    )  # fmt: skip


def results(runs):  # noqa: F811
    return json.loads((runs / OUT / "results" / "results_fields.json").read_text())


@pytest.mark.unit
def test_the_stage_with_a_labels_file(tmp_path):
    runs = tmp_path / "runs"  # noqa: F811
    labels = tmp_path / "medical_fields.json"
    labels.write_text(json.dumps([
        {"dataset": "medmcqa", "question": SAMPLES[0][1], "medical_field": "Cardiology"},
        {"dataset": "medqa_4options_test", "question": SAMPLES[3][1], "medical_field": "Nephrology"},
        {"dataset": "mmlu_anatomy", "question": SAMPLES[5][1], "medical_field": "None"},
    ]))  # fmt: skip
    stage(runs, tmp_path, "--labels", labels)
    res = results(runs)
    assert res["fields"] == {"samples": 6, "none": 1, "unlabelled": 2, "no_question": 0}  # two have no label
    acc = {t.removeprefix("field_"): v["acc,none"] for t, v in res["results"].items()}
    assert (acc["cardiology"], acc["nephrology"], acc["oncology"]) == (0.5, 0.0, None)
    assert res["n-samples"]["field_cardiology"]["effective"] == 2
    per = [json.loads(x) for x in (runs / OUT / "per_sample.jsonl").read_text().splitlines()]
    assert {p["task"] for p in per} == set(fl.TASKS) & {t.removeprefix("aloe_local_") for t, _, _ in SAMPLES}
    missing = stage(runs, tmp_path, "--labels", tmp_path / "none.json", "--force", check=False)
    assert missing.returncode and "none.json" in missing.stderr


@pytest.mark.unit
def test_a_doc_logged_without_a_question_is_counted_and_careqas_is_labelled_as_lm_eval_asked_it(tmp_path):
    stand_in = (fl.key("CareQA", fl.CAREQA_NONE_QUESTION), fl.CAREQA_NONE_QUESTION, True)
    assert fl.question("careqa_en", {"question": None, "op1": "a"}) == stand_in
    d = tmp_path / "lm_eval" / "model"
    d.mkdir(parents=True)
    docs = {
        "careqa_en": [{"question": None, "op1": "a"}, {"question": SAMPLES[4][1], "op1": "a"}],
        "medmcqa": [{"opa": "a"}],
    }  # CareQA_en's None question (lm-eval PR #2714); a missing one elsewhere
    for task, rows in docs.items():
        (d / f"samples_{task}_2026-01-01T00-00-00.000001.jsonl").write_text(
            "".join(json.dumps({"doc_id": i, "doc": doc, "acc": 1.0}) + "\n" for i, doc in enumerate(rows))
        )
    labels = tmp_path / "medical_fields.json"
    labels.write_text(
        json.dumps([{"dataset": "CareQA", "question": fl.CAREQA_NONE_QUESTION, "medical_field": "Surgery"}])
    )
    runs = tmp_path / "runs"  # noqa: F811
    p = run_py("scripts.fields", "--profile", "cpu-tiny", "--runs", runs, "--model", MODEL, "--samples", d.parent,
               "--labels", labels)  # fmt: skip
    res = results(runs)
    assert res["fields"] == {"samples": 3, "none": 0, "unlabelled": 2, "no_question": 2}
    assert res["n-samples"]["field_surgery"]["effective"] == 1 and "2 without a question" in p.stdout


@pytest.mark.unit
def test_a_labeller_behind_an_openai_compatible_server_and_its_cache(tmp_path, server):  # noqa: F811
    url, seen, state = server
    state["reply"] = lambda body: next((v for k, v in REPLIES.items() if k in body["messages"][-1]["content"]), "")
    runs = tmp_path / "runs"  # noqa: F811
    stage(runs, tmp_path, "--judge", fl.LABELLER, "--judge-url", url)
    res = results(runs)
    assert res["fields"] == {"samples": 6, "none": 1, "unlabelled": 1, "no_question": 0}  # skin: no listed field
    assert res["results"]["field_cardiology"]["acc,none"] == pytest.approx(2 / 3)
    assert res["results"]["field_nephrology"]["acc,none"] == 0.0
    assert len(seen) == 5 and {s["model"] for s in seen} == {fl.LABELLER}  # one request per question
    assert (seen[0]["temperature"], seen[0]["top_p"], seen[0]["max_tokens"]) == (0.7, 0.9, 500)
    assert all(len(s["messages"]) == 16 and s["messages"][0]["content"] == fl.SYSTEM for s in seen)
    written = json.loads((runs / OUT / "medical_fields.json").read_text())
    assert {(w["dataset"], w["medical_field"]) for w in written} >= {("CareQA", None), ("medmcqa", "Cardiology")}
    stage(runs, tmp_path, "--judge", fl.LABELLER, "--judge-url", url, "--force")
    assert len(seen) == 5 and results(runs)["fields"] == res["fields"]  # every label came from the cache


@pytest.mark.chain
def test_the_tiny_kit_labels_the_whole_path(runs, tmp_path):  # noqa: F811
    p = stage(runs, tmp_path, "--local", "--max-tokens", 16)
    res = results(runs)
    labelled = sum(v["effective"] for v in res["n-samples"].values())
    assert res["fields"]["samples"] == 6 and labelled + res["fields"]["none"] + res["fields"]["unlabelled"] == 6
    assert f"{res['fields']['unlabelled']} of 6 samples unlabelled" in p.stdout
    (cache,) = (runs / "fields-labels").iterdir()
    replies = [json.loads(x) for x in (cache / "labels.jsonl").read_text().splitlines()]
    assert len(replies) == 5 and all(r["prompt_tokens"] > 1000 for r in replies)  # the whole prompt, per question
    written = json.loads((runs / OUT / "medical_fields.json").read_text())
    assert len(written) == 5 and all(w["medical_field"] == fl.parse(w["cot_medical_field"]) for w in written)


@pytest.mark.unit
def test_verify_passes_the_reported_row_and_fails_a_shifted_one(tmp_path):
    row = yaml.safe_load((ROOT / "results" / "reported.yaml").read_text())["tables"]["table10"]["settings"]
    row = row["0-shot"]["Llama3.1-Aloe-Beta-8B"]
    names = {f.lower(): f for f in fl.FIELDS}
    out = {}
    for shift in (0.0, 0.05):
        n = 2000  # per field: the stderr (about 0.01) keeps the tolerance at the floor
        rows = [{"field": names[c], "acc": float(i < round((v + shift) * n))} for c, v in row.items() for i in range(n)]
        f = tmp_path / f"results_{shift}.json"
        f.write_text(json.dumps(fl.results_file(fl.accuracy(rows), {})))
        out[shift] = run_py("scripts.verify", "--model", "HPAI-BSC/Llama3.1-Aloe-Beta-8B", "--suite", "fields",
                            "--results", f, "--out", tmp_path / str(shift), check=False)  # fmt: skip
    assert out[0.0].returncode == 0 and "17 of 17 within tolerance" in out[0.0].stdout, out[0.0].stdout
    assert out[0.05].returncode == 1 and "0 of 17 within tolerance" in out[0.05].stdout
