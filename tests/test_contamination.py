"""Contamination both ways, on planted overlaps: decontamination's report counts the training rows it removed per
benchmark and source, and `make contamination` finds exactly the test questions a training set holds (decontamination's
n-gram rule: one copied with light reformatting, one under 8 words) and splits the model's accuracy on them and on
the others, with Newcombe's interval for the difference; a broken input is named by file and line."""

import json
import random

import pytest
from conftest import run_py

from data_prep import contamination, decontaminate, normalize
from data_prep.contamination import newcombe

pytestmark = pytest.mark.unit

MODEL = "HPAI-BSC__Llama3.1-Aloe-Beta-8B"  # the folder lm-eval writes a model's samples in
WORDS = ("renal cardiac hepatic biopsy fever lesion murmur infant valve enzyme nerve artery rash cough insulin "
         "platelet tumour cortex syndrome antibody dose fracture ulcer sepsis lymph gland reflex tremor").split()  # fmt: skip
FILLER = "please kindly explain summarise this that why how some many with without about again today".split()
rnd = random.Random(7)
MEDQA = [" ".join(rnd.choices(WORDS, k=14)).capitalize() + "?" for _ in range(20)]
MEDMCQA = ["Drug of choice in absence seizures is"] + [" ".join(rnd.choices(WORDS, k=12)) for _ in range(9)]
MMLU = [" ".join(rnd.choices(WORDS, k=10)) for _ in range(5)]
# the model's answers, right (1) or wrong (0): MedQA 0-2 overlap (2 of 3 right), the 17 others 7 right;
# MedMCQA 0 and 3 overlap (both wrong), the 8 others 4 right
ACC = {
    "medqa_4options": [1, 1, 0] + [1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 0],
    "medmcqa": [0, 1, 0, 0, 1, 0, 1, 0, 1, 0],
    "mmlu_anatomy": [1, 0, 1, 1, 0],
}
ID = {"medqa_4options": "medqa", "medmcqa": "mmcqa"}


def filler(k=12):
    return " ".join(rnd.choices(FILLER, k=k))


def reformatted(q):  # case, punctuation, line breaks and a prefix changed: the same words in the same order
    ws = q.rstrip("?").split()
    return "QUESTION:\n" + " ".join(w.upper() for w in ws[:6]) + ",\n  " + " - ".join(ws[6:]) + " ??"


def docs(task):
    if task == "medqa_4options":
        return [{"id": f"medqa-{i}", "sent1": q, "ending0": "a", "ending1": "b", "ending2": "c", "ending3": "d",
                 "label": 0} for i, q in enumerate(MEDQA)]  # fmt: skip
    if task == "medmcqa":
        return [{"id": f"mmcqa-{i}", "question": q, "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 0}
                for i, q in enumerate(MEDMCQA)]  # fmt: skip
    return [{"question": q, "subject": "anatomy", "choices": ["a", "b", "c", "d"], "answer": 0} for q in MMLU]


def write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def sample(i, doc, acc):
    """One line of lm-eval's --log_samples file, as it writes it for a multiple-choice task."""
    return {"doc_id": i, "doc": doc, "target": 0, "arguments": {}, "resps": [], "filtered_resps": [], "filter": "none",
            "metrics": ["acc", "acc_norm"], "doc_hash": "h", "prompt_hash": "h", "target_hash": "h",
            "acc": float(acc), "acc_norm": float(acc)}  # fmt: skip


@pytest.fixture
def planted(tmp_path):
    """(local sources, eval test sets, lm-eval samples folder, normalized JSONL) with the overlaps planted."""
    src = tmp_path / "sources"
    sharegpt = [
        MEDQA[0],  # line 1: a MedQA question verbatim
        f"Quick quiz: {MEDMCQA[3]} Explain.",  # 2: a MedMCQA one inside a longer prompt
        f"{filler()}. {MEDMCQA[0]}, {filler()}",  # 3: a MedMCQA question under 8 words, whole
        " ".join(MEDQA[5].split()[2:9]) + " " + filler(),  # 4: 7 words of a MedQA question: no 8-gram, kept
        *(filler() for _ in range(4)),
    ]
    turns = [{"conversations": [{"from": "human", "value": u}, {"from": "gpt", "value": filler()}]} for u in sharegpt]
    write(src / "meds_ins.jsonl", [*turns, {"conversations": MEDQA[7]}])  # line 9: not sharegpt, not training data
    alpaca = [
        ("Please answer", reformatted(MEDQA[1])),  # line 1
        (MEDQA[2], ""),  # 2
        (f"Again: {' '.join(MEDQA[2].split()[3:11])} {filler()}", ""),  # 3: 8 words of it, exactly the rule's n
        (MEDQA[0], ""),  # 4: held by both sources
    ]
    alpaca += [(filler(), "") for _ in range(3)]
    write(src / "chain_of_diagnosis.jsonl", [{"instruction": i, "input": x, "output": filler()} for i, x in alpaca])
    evals = tmp_path / "eval"
    lm_eval = tmp_path / "lm_eval" / MODEL
    for task, acc in ACC.items():
        write(evals / f"{task}.jsonl", docs(task))
        write(lm_eval / f"samples_{task}_2026-01-02T10-00-00.000001.jsonl",
              [sample(i, d, a) for i, (d, a) in enumerate(zip(docs(task), acc))])  # fmt: skip
        # an older run of the same task: never read
        write(lm_eval / f"samples_{task}_2025-06-01T10-00-00.000001.jsonl", [sample(0, docs(task)[0], 0)])
    norm = tmp_path / "normalize.jsonl"
    result = normalize.run(norm, tmp_path / "n.rejects.jsonl", tmp_path / "n.report.json", sources_dir=src)
    assert (result["in"], result["out"]) == (16, 15), result
    return src, evals, lm_eval.parent, norm


def test_the_decontamination_report_counts_removed_rows_per_benchmark_and_source(planted, tmp_path):
    _, evals, _, norm = planted
    rep = decontaminate.run(norm, tmp_path / "d.jsonl", tmp_path / "d.rejects.jsonl", tmp_path / "d.json", evals)
    matrix = rep["contamination"]
    assert matrix["counts"] == {"medmcqa": {"meds_ins": 2}, "medqa_4options": {"chain_of_diagnosis": 4, "meds_ins": 1}}
    assert json.loads((tmp_path / "d.json").read_text())["contamination"] == matrix
    assert (rep["in"], rep["out"], rep["dropped"]) == (15, 8, 7)
    pairs = [(e["benchmark"], e["source"], e["train_id"], e["test_id"]) for e in matrix["examples"]]
    assert pairs == [
        ("medmcqa", "meds_ins", "meds_ins:2", "medmcqa:mmcqa-3"),
        ("medmcqa", "meds_ins", "meds_ins:3", "medmcqa:mmcqa-0"),
        ("medqa_4options", "chain_of_diagnosis", "chain_of_diagnosis:1", "medqa_4options:medqa-1"),
        ("medqa_4options", "chain_of_diagnosis", "chain_of_diagnosis:2", "medqa_4options:medqa-2"),
        ("medqa_4options", "meds_ins", "meds_ins:1", "medqa_4options:medqa-0"),
    ]  # the first EXAMPLES (2) of each cell
    assert matrix["examples"][4]["test"] == matrix["examples"][4]["train"] == decontaminate.snippet(MEDQA[0])
    rejects = {r["id"]: r for r in map(json.loads, (tmp_path / "d.rejects.jsonl").read_text().splitlines())}
    assert "meds_ins:4" not in rejects  # 7 words of a test question: below the rule
    assert (rejects["chain_of_diagnosis:1"]["task"], rejects["chain_of_diagnosis:1"]["test_id"]) == (
        "medqa_4options",
        "medqa-1",
    )


def test_make_data_prints_the_matrix_after_its_steps(planted, tmp_path):
    src, evals, _, _ = planted
    p = run_py("data_prep.pipeline", "--work", tmp_path / "work", "--out-dir", tmp_path / "out", "--sources-dir", src,
               "--eval-dir", evals, "--max-reject-rate", "1")  # fmt: skip
    after = p.stdout.split("training rows decontamination removed, per benchmark and source:\n")[1].splitlines()
    assert [" | ".join(c.strip() for c in line.split("|")) for line in [after[0], *after[2:4]]] == [
        "benchmark | chain_of_diagnosis | meds_ins | total",
        "medmcqa | 0 | 2 | 2",
        "medqa_4options | 4 | 1 | 5",
    ]


def test_the_report_finds_exactly_the_planted_questions_and_splits_the_accuracy(planted, tmp_path):
    src, _, lm_eval, _ = planted
    rep = contamination.run(lm_eval, tmp_path / "c.json", "authors", sources_dir=src)
    b = rep["benchmarks"]
    assert list(b) == ["medqa_4options", "medmcqa", "mmlu_medical"]  # Table 9's order; no PubMedQA, CareQA samples
    assert b["medqa_4options"]["overlapping_questions"] == {
        "medqa_4options:medqa-0": "meds_ins:1",  # the first training row that holds it (meds_ins is read first)
        "medqa_4options:medqa-1": "chain_of_diagnosis:1",  # reformatted
        "medqa_4options:medqa-2": "chain_of_diagnosis:2",
    }
    assert b["medmcqa"]["overlapping_questions"] == {"medmcqa:mmcqa-0": "meds_ins:3", "medmcqa:mmcqa-3": "meds_ins:2"}
    assert b["mmlu_medical"]["overlapping_questions"] == {}
    mq = b["medqa_4options"]
    assert (mq["questions"], mq["overlapping"], mq["clean"]) == (
        20,
        {"n": 3, "correct": 2, "acc": 2 / 3},
        {"n": 17, "correct": 7, "acc": 7 / 17},
    )
    assert mq["difference"] == pytest.approx(13 / 51)  # 2/3 - 7/17
    assert mq["ci95"] == pytest.approx([-0.2577, 0.5898], abs=5e-5)
    mc = b["medmcqa"]
    assert (mc["overlapping"]["acc"], mc["clean"]["acc"], mc["difference"]) == (0.0, 0.5, -0.5)
    assert mc["ci95"] == pytest.approx([-0.7848, 0.2166], abs=5e-5)
    mm = b["mmlu_medical"]
    assert (mm["clean"], mm["overlapping"]["acc"], mm["difference"], mm["ci95"]) == (
        {"n": 5, "correct": 3, "acc": 0.6},
        None,
        None,
        None,
    )
    # the matrix counts questions, each once per source (the training rows are counted by decontamination)
    assert rep["matrix"]["counts"] == {
        "medmcqa": {"meds_ins": 2},
        "medqa_4options": {"chain_of_diagnosis": 3, "meds_ins": 1},
    }
    assert rep["training"] == {
        "sources": "authors",
        "rows": {"chain_of_diagnosis": 7, "meds_ins": 8},
        "skipped": {"meds_ins": 1},  # the row normalize rejects: its question is not counted as held
    }
    assert json.loads((tmp_path / "c.json").read_text()) == json.loads(json.dumps(rep))
    # the same training rows as a normalized JSONL that `make data` wrote: the same questions and numbers
    again = contamination.run(lm_eval, tmp_path / "c2.json", str(planted[3]))
    assert again["benchmarks"] == rep["benchmarks"] and again["training"]["rows"] == rep["training"]["rows"]


def test_newcombe_hybrid_score_interval_matches_the_published_examples():
    # Newcombe (1998) Stat Med 17:873, Table II, method 10
    for (k1, n1, k2, n2), (lo, hi) in {
        (56, 70, 48, 80): (0.0524, 0.3339),
        (9, 10, 3, 10): (0.1705, 0.8090),
        (5, 56, 0, 29): (-0.0381, 0.1926),
        (0, 10, 0, 20): (-0.1611, 0.2775),
        (10, 10, 0, 20): (0.6791, 1.0),
    }.items():
        d, low, high = newcombe(k1, n1, k2, n2)
        assert d == k1 / n1 - k2 / n2 and (low, high) == pytest.approx((lo, hi), abs=5e-5)


def test_make_contamination_prints_the_table_and_writes_its_json_under_runs(planted, tmp_path):
    _, _, lm_eval, norm = planted
    p = run_py("scripts.drivers.contamination", "--samples", lm_eval, "--sources", norm, "--runs", tmp_path / "runs")
    rows = {}  # the first line of each benchmark: its row of the first table
    for line in p.stdout.splitlines():
        rows.setdefault(line.split("|")[0].strip(), [c.strip() for c in line.split("|")])
    assert rows["medqa_4options"][:7] == ["medqa_4options", "20", "3", "0.412 (7/17)", "0.667 (2/3)", "+0.255",
                                          "[-0.258, +0.590]"]  # fmt: skip
    out = tmp_path / "runs" / "contamination" / f"{MODEL}-normalize.json"
    assert json.loads(out.read_text())["benchmarks"]["medmcqa"]["overlapping"]["n"] == 2


@pytest.mark.parametrize(
    "line,expect",
    [
        ("{not json", "malformed JSON"),
        (json.dumps({"doc_id": 4, "doc": {"sent1": "x"}, "acc": 1.0}), "not an lm-eval sample of medqa_4options"),
        (json.dumps(sample(4, docs("medqa_4options")[4], 1) | {"acc": 0.5}), "acc is 0.5, not 0 or 1"),
    ],
)
def test_a_broken_samples_line_is_named_by_file_and_line(planted, tmp_path, line, expect):
    _, _, lm_eval, norm = planted
    f = lm_eval / MODEL / "samples_medqa_4options_2026-01-02T10-00-00.000001.jsonl"
    lines = f.read_text().splitlines()
    f.write_text("\n".join(lines[:4] + [line] + lines[5:]) + "\n")
    p = run_py("data_prep.contamination", "--samples", lm_eval, "--sources", norm, "--out", tmp_path / "c.json",
               check=False)  # fmt: skip
    assert p.returncode == 1 and f"{f}:5:" in p.stderr and expect in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "c.json").exists()


def test_a_missing_folder_no_samples_or_a_missing_training_file_is_a_clear_error(planted, tmp_path):
    _, _, lm_eval, norm = planted
    (tmp_path / "empty").mkdir()
    for args, expect in [
        (["--samples", tmp_path / "nope"], f"{tmp_path / 'nope'}: no such folder"),
        (["--samples", tmp_path / "empty"], f"{tmp_path / 'empty'}: no lm-eval samples file"),
        (["--samples", lm_eval, "--sources", tmp_path / "none.jsonl"], "none.jsonl: neither a source set"),
    ]:
        p = run_py("scripts.drivers.contamination", *args, "--runs", tmp_path / "runs", check=False)
        assert p.returncode == 1 and expect in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert not (tmp_path / "runs").exists()
