"""make report: a miniature recipe run (the file layouts of runs/aloe-beta-8b-cpu-tiny, recorded as if the run had
been made elsewhere and moved here) read into the page: Wilson intervals within 0-100, every sample of every task
with its choice and gold answer, Medprompt members, curves from the progress log or TensorBoard event files,
recipe tags, every internal link resolving, and the run's strings escaped."""

import json
import re
import time
from html.parser import HTMLParser

import pytest
import test_diff_eval as dq

from data_prep.benchmarks import MMLU_MEDICAL
from evals import asr, diff, fields, fixtures, llama_guard, openmedqa, seval
from scripts import core
from scripts.core import AloeError
from scripts.drivers import report
from scripts.fields import read_samples
from scripts.lib import chain
from scripts.lib.openrlhf_log import STEP
from scripts.lib.report import collect, curves, render, tags
from scripts.lib.report.stats import intervals, wilson

pytestmark = pytest.mark.unit

NAME = "aloe-beta-8b-cpu-tiny"
ELSEWHERE = f"/elsewhere/runs/{NAME}"  # where the run says it was made: every recorded path points there
STAMP = "2026-12-07T16-09-24.664773"
MODEL = "__elsewhere__runs__aloe-beta-8b-cpu-tiny__dpo__06-stage2-0__model"
HOSTILE = 'Which drug <script>alert("x")</script> & what "dose"?'


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))


def _jsonl(path, rows):
    _write(path, "".join(json.dumps(r) + "\n" for r in rows))


def lm_sample(doc_id, doc, labels, gold, choice, target=None):
    """One line of lm-eval's --log_samples for a log-likelihood multiple-choice task: the chosen option scores
    highest."""
    lls = [-5.0 - i for i in range(len(labels))]
    lls[choice] = -1.0
    prompt = "Question: ...\nAnswer:"
    return {
        "doc_id": doc_id,
        "doc": doc,
        "target": str(gold) if target is None else target,
        "arguments": {f"gen_args_{i}": {"arg_0": prompt, "arg_1": f" {x}"} for i, x in enumerate(labels)},
        "resps": [[[str(x), "False"]] for x in lls],
        "filtered_resps": [[str(x), "False"] for x in lls],
        "filter": "none",
        "metrics": ["acc"],
        "doc_hash": "0" * 64,
        "prompt_hash": "1" * 64,
        "target_hash": "2" * 64,
        "acc": float(choice == gold),
    }


def medqa_doc(i, question, gold):
    return {"id": f"medqa-{i}", "sent1": question, "sent2": "", **{f"ending{j}": f"drug{i}{j}" for j in range(4)},
            "label": gold}  # fmt: skip


MEDQA = [(2, 2), (1, 3), (0, 0), (3, 1), (2, 0), (1, 1)]  # (gold, choice): docs 0, 2 and 5 right


def samples_of_tasks() -> dict:
    """{lm-eval task: sample rows} of the Table 9 tasks."""
    abcd = "ABCD"
    out = {
        "aloe_local_medqa_4options": [
            lm_sample(i, medqa_doc(i, HOSTILE if i == 2 else f"Question {i}?", g), abcd, g, c)
            for i, (g, c) in enumerate(MEDQA)
        ],
        "aloe_local_medmcqa": [
            lm_sample(
                i,
                {"id": f"m{i}", "question": f"MedMCQA {i}?", **{f"op{x}": f"o{x}" for x in "abcd"}, "cop": g},
                abcd,
                g,
                c,
            )
            for i, (g, c) in enumerate([(0, 0), (1, 2), (2, 2), (3, 0)])
        ],  # fmt: skip
        "aloe_local_aloe_pubmedqa": [
            lm_sample(
                i,
                {
                    "pubid": 100 + i,
                    "question": f"Does X{i} help?",
                    "context": {"contexts": [f"Abstract {i}."]},
                    "final_decision": d,
                },
                ["yes", "no", "maybe"],
                g,
                c,
                target=d,
            )
            for i, (d, g, c) in enumerate([("yes", 0, 0), ("maybe", 2, 0), ("no", 1, 1)])
        ],  # fmt: skip
        "aloe_local_careqa_en": [
            lm_sample(
                i,
                {
                    "question": f"CareQA {i}?",
                    **{f"op{j}": f"c{j}" for j in range(1, 5)},
                    "cop": g + 1,
                    "unique_id": f"careqa-{i}",
                },
                abcd,
                g,
                c,
            )
            for i, (g, c) in enumerate([(1, 1), (2, 3)])
        ],  # fmt: skip
    }
    for t in MMLU_MEDICAL:
        out[f"aloe_local_{t}"] = [
            lm_sample(i, {"question": f"{t} {i}?", "subject": t, "choices": ["w", "x", "y", "z"], "answer": g}, abcd, g, c)
            for i, (g, c) in enumerate([(0, 0), (1, 2)])
        ]  # fmt: skip
    return out


PROGRESS = (
    "Train step of epoch 0:   0%|  | 0/3 [00:00<?, ?it/s, loss=0.693, acc=0, chosen_reward=0, reject_reward=0, lr=0]\n"
    "Train step of epoch 0:  33%|# | 1/3 [00:01<00:02, 1.2it/s, loss=0.693, acc=0, chosen_reward=0, reject_reward=0]\n"
    "Train step of epoch 0:  33%|# | 1/3 [00:01<00:02, 1.2it/s, loss=0.69, acc=1, chosen_reward=0.02, reject_reward=0.01]\n"
    "a warning line\n"
    "Train step of epoch 0:  67%|##| 2/3 [00:02<00:01, 1.2it/s, loss=0.68, acc=1, chosen_reward=0.05, reject_reward=0.01]\r"
    "Train step of epoch 0: 100%|##| 3/3 [00:03<00:00, 1.2it/s, loss=0.67, acc=0.5, chosen_reward=0.1, reject_reward=0.02]\n"
)  # fmt: skip


def manifest(stage, **extra):
    return {"schema": "aloe-repro/manifest@2", "stage": stage, "status": "done", "key": "k" * 64,
            "recipe": {"path": f"recipes/aloe-beta-8b/{stage}.yaml", "profile": "cpu-tiny", "sha256": "r" * 64,
                       "rendered": {}},
            "inputs": {}, "environment": {stage: "e" * 64}, "code": {"sha256": "c" * 64, "files": ["scripts/core.py"]},
            "outputs": {}, "tools": {"torch": "2.13.0+cpu"}, "seed": 42, "launcher": {"kind": "local", "host": "vm"},
            "git_sha": "a" * 40, "started": "2026-12-07T15:57:41+00:00", "finished": "2026-12-07T15:59:18+00:00",
            "wall_s": 77.6, "metrics": {}, **extra}  # fmt: skip


def mcqa_stage(stage):
    """An MCQA evaluation stage folder: lm-eval's output of the Table 9 tasks (with --log_samples) and its manifest."""
    tasks = samples_of_tasks()
    lm = stage / "lm_eval" / MODEL
    for task, rows in tasks.items():
        _jsonl(lm / f"samples_{task}_{STAMP}.jsonl", rows)
    _jsonl(lm / "samples_aloe_local_medqa_4options_2026-01-01T00-00-00.000000.jsonl", [])  # an older run's: ignored
    _write(lm / f"results_{STAMP}.json", {
        "results": {t: {"alias": t, "acc,none": sum(r["acc"] for r in rows) / len(rows)} for t, rows in tasks.items()},
        "n-samples": {t: {"original": len(r), "effective": len(r)} for t, r in tasks.items()},
        "n-shot": {t: 0 for t in tasks}, "config": {"model": "hf", "batch_size": "8", "device": "cpu"},
        "lm_eval_version": "0.4.13", "chat_template_sha": None,
    })  # fmt: skip
    _write(stage / "manifest.json", manifest("eval", started="2026-12-07T16:08:07+00:00"))


def mini_run(root):
    """A finished recipe run under root/runs/ in the layout `make smoke` writes; returns its folder."""
    run = root / "runs" / NAME
    mcqa_stage(run / "eval-mcqa")
    _write(run / "verify" / "verify.json", {
        "model": "tiny", "table": "fixture", "setting": "0-shot", "baseline": None,
        "results": f"{ELSEWHERE}/eval-mcqa/lm_eval/{MODEL}/results_{STAMP}.json",
        "rows": [
            {"column": "medqa_4options", "task": "medqa_4options", "reported": 45.0, "measured": 50.0, "stderr": 22.4,
             "delta": 5.0, "tolerance": 2.0, "result": "FAIL"},
            {"column": "mmlu_medical", "task": "mmlu_medical", "reported": 50.0, "measured": 50.0, "stderr": 8.2,
             "delta": 0.0, "tolerance": 2.0, "result": "pass"},
        ],
    })  # fmt: skip
    _write(run / "verify" / "medprompt" / "verify.json", {
        "model": "tiny", "table": "fixture", "setting": "medprompt", "baseline": None,
        "results": f"{ELSEWHERE}/medprompt-medqa_4options",
        "rows": [{"column": "medqa_4options", "task": "medqa_4options", "reported": 60.0, "measured": 66.667,
                  "stderr": 33.3, "delta": 6.667, "tolerance": 65.3, "result": "pass"}],
    })  # fmt: skip
    _write(run / "sft" / "manifest.json", manifest(
        "sft", world_size=1, micro_batch=2, grad_accum=2, total_batch=4,
        recipe={"path": "recipes/aloe-beta-8b/sft.yaml", "profile": "cpu-tiny", "sha256": "r" * 64,
                "rendered": {"learning_rate": 2e-5, "micro_batch_size": 2, "seed": 42}},
        inputs={"data": {"path": f"{ELSEWHERE}/data/sft.jsonl", "sha256": "d" * 64}},
        outputs={"model": {"path": f"{ELSEWHERE}/sft/model", "sha256": "f" * 64}},
        metrics={"losses": [3.0, 2.5, 2.25], "steps": 3},
    ))  # fmt: skip
    _write(run / "dpo" / "01-stage1-0" / "manifest.json",
           manifest("dpo-run", started="2026-12-07T16:00:00+00:00", wall_s=38.2))  # fmt: skip
    _write(run / "dpo" / "01-stage1-0" / "log.txt", PROGRESS)
    _write(run / "dpo" / "02-stage1-1" / "manifest.json", manifest(
        "dpo-run", started="2026-12-07T16:01:00+00:00", wall_s=41.8,
        metrics={"loss_first": 0.693, "acc_first": 0.0, "reward_margin_first": 0.0, "loss_last": 0.6, "acc_last": 1.0,
                 "reward_margin_last": 0.2},
    ))  # fmt: skip
    questions = [medqa_doc(i, f"Medprompt question {i}?", g) for i, g in enumerate([0, 1, 2])]
    _jsonl(run / "data" / "eval" / "medqa_4options.jsonl", questions)
    mp = run / "medprompt-medqa_4options"
    _write(mp / "manifest.json", manifest(
        "medprompt", started="2026-12-07T16:06:15+00:00",
        inputs={"questions": {"path": f"{ELSEWHERE}/data/eval/medqa_4options.jsonl", "sha256": "q" * 64}},
    ))  # fmt: skip
    gens = []
    for i, answers in enumerate([["A", "A"], [None, "C"], ["C", "C"]]):  # member 0 of medqa-1 never parses
        for m, a in enumerate(answers):
            attempts = 2 if a is None else 1
            for t in range(attempts):
                gens.append({"qid": f"medqa-{i}", "member": m, "attempt": t, "permutation": [0, 1, 2, 3],
                             "text": f"Answer: [{a}]" if a else "<b>no answer</b>", "parsed": a, "answer": a,
                             "prompt_tokens": 800, "completion_tokens": 10 + t, "error": None})  # fmt: skip
    _jsonl(mp / "out" / "generations.jsonl", gens)
    per_q = [{"qid": "medqa-0", "answer": "A", "gold": "A", "correct": True, "votes": {"A": 2}, "draw": False, "members": 2},
             {"qid": "medqa-1", "answer": "C", "gold": "B", "correct": False, "votes": {"C": 1}, "draw": False,
              "members": 2},
             {"qid": "medqa-2", "answer": "C", "gold": "C", "correct": True, "votes": {"C": 2}, "draw": False,
              "members": 2}]  # fmt: skip
    _write(mp / "out" / "evaluation.json", {"dataset": "medqa_4options", "questions": 3, "accuracy": 2 / 3,
           "parse_rate": 5 / 6, "draws": 0, "members_run": 6, "members_full": 6, "generated_tokens": 71,
           "prompt_tokens": 5600, "per_question": per_q})  # fmt: skip
    for job, stage, folder, args, after in (
        ("sft", "sft", "sft", [], ["data"]),
        ("dpo-stage1-1", "dpo", "dpo", ["--upto", 1], ["sft"]),
        ("dpo-stage1-2", "dpo", "dpo", ["--upto", 2], ["dpo-stage1-1"]),
        ("eval", "eval", "eval-mcqa", ["--suite", "mcqa"], ["dpo-stage1-2"]),
        ("verify", "verify", "verify", ["--suite", "mcqa"], ["eval", "medprompt-medqa_4options"]),
    ):  # the cpu-tiny profile: no published hours
        _write(run / "plan" / f"{job}.json", {"schema": "aloe-repro/plan@2", "runs": str(root / "runs"),
               "job": {"name": job, "stage": stage, "plan": f"{ELSEWHERE}/plan/{job}.json",
                       "folder": f"{ELSEWHERE}/{folder}", "after": after, "args": args, "nodes": 1, "gpus": 1,
                       "hours": None, "batch": "", "parallel": "", "cuda": False, "vllm": False, "rendered": {}},
               "recipe": {"dir": "recipes/aloe-beta-8b", "profile": "cpu-tiny"},
               "sources": {"recipes/aloe-beta-8b/sft.yaml": "0" * 64}})  # fmt: skip
    judged_suites(run)
    diff_eval(root, run)
    return run


# --- the judged suites, written by the stages' own code --------------------------------------------------------------
SAFETY_JUDGE = ["unsafe\nS1,S9", "safe", "I cannot tell"]  # Llama Guard's replies, in turn: unsafe, safe, unparsed
OPENMEDQA_JUDGE = ["<think>same</think><VERDICT>1</VERDICT>", "<VERDICT>0</VERDICT>", "<think>cut off"]
FIELDS_OF = ["Cardiology", "Hematology", None]  # the labels of the labelled questions, in turn (None: unlabelled)


def judged_suites(run):
    """eval-safety/, eval-openmedqa/ and eval-fields/ as scripts/safety.py, openmedqa.py and fields.py write them
    (their own row building, over evals/fixtures.py's prompts and the mini run's lm-eval samples), and verify tables
    of Table 13 and Table 10 (0-1) that measured them."""
    out = run / "eval-safety" / "out"
    core.write_jsonl(out / "seval.jsonl", fixtures.seval_rows(1))
    prompts = seval.sample(seval.load(out / "seval.jsonl"), 1)
    rows = []
    for i, x in enumerate(prompts):
        judge = SAFETY_JUDGE[i % 3]
        v = llama_guard.parse(judge)
        rows.append({**x, "answer": HOSTILE if i == 0 else f"answer {i}", "judge_output": judge, "label": v.label,
                     "categories": v.categories})  # fmt: skip
    core.write_jsonl(out / "per_prompt.jsonl", rows)
    _write(out / "results" / "results_safety.json", asr.results_file(asr.tables(rows), {}))
    _write(run / "eval-safety" / "manifest.json", manifest("safety", started="2026-12-07T16:10:00+00:00"))

    out = run / "eval-openmedqa" / "out"
    _write(out / "OpenMedQA.json", fixtures.openmedqa_rows(4))
    questions = openmedqa.load(out / "OpenMedQA.json")
    per = [{**q, "response": f"Diagnosis {i % 2}", "judge_output": OPENMEDQA_JUDGE[i % 3],
            "verdict": openmedqa.parse(OPENMEDQA_JUDGE[i % 3])} for i, q in enumerate(questions)]  # fmt: skip
    core.write_jsonl(out / "per_question.jsonl", per)
    _write(out / "results" / "results_openmedqa.json",
           openmedqa.results_file(openmedqa.accuracy([x["verdict"] for x in per]), (None, None), {}))  # fmt: skip
    _write(run / "eval-openmedqa" / "manifest.json", manifest("openmedqa", started="2026-12-07T16:11:00+00:00"))

    stage = run / "eval-fields"
    samples = read_samples(run / "eval-mcqa" / "lm_eval", None)
    keys = sorted({x["key"] for x in samples})
    labels = {k: FIELDS_OF[i % 3] for i, k in enumerate(keys)}
    _write(stage / "medical_fields.json", [
        {"dataset": fields.TASKS[x["task"]][0], "question": x["question"], "medical_field": labels[x["key"]],
         "cot_medical_field": f"Reasoning. The category is: {labels[x['key']]}"} for x in samples
    ])  # fmt: skip
    per = [{**x, "field": labels.get(x["key"])} for x in samples]
    core.write_jsonl(stage / "per_sample.jsonl", per)
    _write(stage / "results" / "results_fields.json", fields.results_file(fields.accuracy(per), {}))
    _write(stage / "manifest.json", manifest("fields", started="2026-12-07T16:12:00+00:00"))
    _write(run / "verify" / "safety" / "verify.json", {
        "model": "tiny", "table": "table13", "setting": "0-shot", "baseline": None,
        "results": f"{ELSEWHERE}/eval-safety/out/results/results_safety.json",
        "rows": [{"column": "cou", "task": "seval_style_cou", "reported": 0.1, "measured": 0.5, "stderr": 0.1,
                  "delta": 0.4, "tolerance": 0.02, "result": "FAIL"}],
    })  # fmt: skip
    _write(run / "verify" / "fields" / "verify.json", {
        "model": "tiny", "table": "table10", "setting": "0-shot", "baseline": None,
        "results": f"{ELSEWHERE}/eval-fields/results/results_fields.json",
        "rows": [{"column": "cardiology", "task": "field_cardiology", "reported": 0.69, "measured": 0.5, "stderr": 0.2,
                  "delta": -0.19, "tolerance": 0.4, "result": "pass"}],
    })  # fmt: skip


# --- a diff-eval comparison, written by evals/diff.py ----------------------------------------------------------------
def diff_eval(root, run):
    """root/runs/diff-eval/: the comparison of the run's MedQA (side A, as `make diff-eval A=<run>/eval-mcqa` records
    it) with another batch size that flips questions 0-1 to wrong (b = 2) and 10-14 to right (c = 5), the question of
    doc 0 holding markup; and one of two other folders."""

    def medqa(choices):
        qs = [HOSTILE if i == 0 else q for i, q in enumerate(dq.questions(20))]
        return {"medqa_4options": [dq.mc_sample(i, q, 0, c) for i, (q, c) in enumerate(zip(qs, choices))]}

    a = dq.lm_eval_output(root / "diff" / "a", medqa(dq.A_CHOICES))
    b = dq.lm_eval_output(root / "diff" / "b", medqa(dq.B_CHOICES), batch_size="8")
    ours = diff.compare(diff.load(a) | {"path": f"{ELSEWHERE}/eval-mcqa"}, diff.load(b))
    _write(root / "runs" / "diff-eval" / "ours.json", ours)
    _write(root / "runs" / "diff-eval" / "theirs.json", diff.compare(diff.load(b), diff.load(a)))


@pytest.fixture
def run(tmp_path):
    return mini_run(tmp_path)


@pytest.fixture
def data(run):
    return collect.collect(run, STEP)


class Page(HTMLParser):
    """Every id, every link and every element that could load something."""

    def __init__(self, text):
        super().__init__()
        self.ids, self.links, self.loads, self.rows = set(), [], [], {}
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            assert a["id"] not in self.ids, f"id {a['id']} twice"
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if a.get("src") or (tag == "link" and a.get("href")):
            self.loads.append(a.get("src") or a["href"])
        if tag == "tr" and "data-doc-id" in a:
            self.rows[a["id"]] = a["data-correct"]


# --- the interval --------------------------------------------------------------------------------------------------
def test_wilson_matches_the_formula_and_stays_within_0_100():
    lo, hi = wilson(8, 40)
    assert lo == pytest.approx(10.4999, abs=1e-3) and hi == pytest.approx(34.7576, abs=1e-3)
    assert wilson(0, 10)[0] == 0.0 and wilson(0, 10)[1] == pytest.approx(100 * 1.96**2 / (10 + 1.96**2))
    assert wilson(10, 10)[1] == 100.0 and wilson(10, 10)[0] == pytest.approx(100 * 10 / (10 + 1.96**2))
    assert wilson(3, 0) is None
    for n in (1, 2, 5, 40, 1273):
        for k in range(n + 1):
            lo, hi = wilson(k, n)
            assert 0.0 <= lo <= 100 * k / n <= hi <= 100.0


def test_an_aggregate_interval_is_wilson_at_its_effective_size():
    """Six MMLU subjects of equal size and accuracy: the plain mean is the pooled proportion, n_eff the total."""
    same = intervals({t: (7, 20) for t in MMLU_MEDICAL})
    assert same["mmlu_anatomy"] == {"k": 7, "n": 20, "ci": wilson(7, 20)}
    assert same["mmlu_medical"]["n"] == 120 and same["mmlu_medical"]["ci"] == pytest.approx(wilson(42, 120))
    apart = intervals({t: (k, 20) for t, k in zip(MMLU_MEDICAL, [2, 18, 2, 18, 2, 18], strict=True)})
    lo, hi = apart["mmlu_medical"]["ci"]
    assert lo > wilson(60, 120)[0] and hi < wilson(60, 120)[1]  # strata that differ: a narrower interval


# --- reading the run -----------------------------------------------------------------------------------------------
def test_every_sample_is_read_with_its_choice_gold_and_outcome(data):
    (ev,) = data["evaluations"]
    medqa = ev["tasks"]["medqa_4options"]
    assert medqa["task"] == "aloe_local_medqa_4options" and medqa["file"].startswith("eval-mcqa/lm_eval/")
    assert [(r["doc_id"], r["gold"], r["choice"], r["correct"]) for r in medqa["rows"]] == [
        (i, g, c, g == c) for i, (g, c) in enumerate(MEDQA)
    ]
    assert medqa["rows"][1]["options"] == ["drug10", "drug11", "drug12", "drug13"]
    assert medqa["rows"][2]["question"] == HOSTILE
    pub = ev["tasks"]["pubmedqa"]["rows"]  # a text target, and the abstract as context
    assert [(r["gold"], r["choice"], r["correct"]) for r in pub] == [(0, 0, True), (2, 0, False), (1, 1, True)]
    assert pub[0]["options"] == ["yes", "no", "maybe"] and pub[0]["context"] == "Abstract 0."
    care = ev["tasks"]["careqa_en"]["rows"][1]  # cop is 1-based
    assert (care["gold"], care["choice"], care["options"][0]) == (2, 3, "c1")
    assert ev["settings"]["batch_size"] == "8" and ev["settings"]["n-shot"] == ["0"]


def test_verify_rows_get_n_the_wilson_interval_and_the_anchor_of_their_samples(data):
    tables = {t["id"]: t for t in data["tables"]}
    t, mp = tables["table-verify"], tables["table-verify-medprompt"]
    medqa, mmlu = t["rows"]
    assert (medqa["k"], medqa["n"], medqa["ci"], medqa["link"]) == (3, 6, wilson(3, 6), "samples-medqa_4options")
    assert mmlu["n"] == 12 and mmlu["ci"] == pytest.approx(wilson(6, 12)) and mmlu["link"] == "samples"
    assert t["results"] == f"eval-mcqa/lm_eval/{MODEL}/results_{STAMP}.json"  # the moved run, read where it lies
    assert (t["id"], mp["id"], mp["results"]) == ("table-verify", "table-verify-medprompt", "medprompt-medqa_4options")
    (row,) = mp["rows"]  # a Medprompt row: its questions' majority votes
    assert (row["k"], row["n"], row["ci"], row["link"]) == (2, 3, wilson(2, 3), "ensemble-medprompt-medqa_4options")


def test_medprompt_members_attempts_votes_and_cost(data):
    (mp,) = data["medprompt"]
    assert (mp["k"], mp["n"], mp["ci"]) == (2, 3, wilson(2, 3))
    q1 = mp["rows"][1]
    assert q1["question"] == "Medprompt question 1?" and q1["options"][1] == "drug11"  # the moved questions file
    assert [[a["attempt"] for a in m["attempts"]] for m in q1["members_detail"]] == [[0, 1], [0]]
    assert (q1["attempts"], q1["tokens"]) == (3, 10 + 11 + 10)
    assert mp["cost"]["attempts_per_question"] == pytest.approx(7 / 3)
    assert mp["cost"]["by_attempts"] == [(2, 2, 100.0), (3, 1, 0.0)]


def test_medprompt_wall_is_shown_by_phase_where_the_run_timed_them():
    from scripts.lib.report import drilldown

    ph = {"embedding_s": 1.25, "engine_start_s": 30.0, "generation_s": 12.04, "vote_s": 0.01}
    assert (
        drilldown._phases({"phases_s": ph}) == " (embedding 1.2 s, engine start 30.0 s, generation 12.0 s, vote 0.0 s)"
    )
    assert drilldown._phases({}) == ""  # an evaluation.json from before the phases were timed


def test_dpo_curves_from_the_progress_log_else_the_manifest(data):
    runs = dict(data["curves"]["dpo"])
    logged = runs["01-stage1-0"]
    assert logged["source"].startswith("OpenRLHF progress log")
    assert logged["loss"] == [(0, 0.693), (1, 0.69), (2, 0.68), (3, 0.67)]  # a redrawn step counts once, its last
    assert [s for s, _ in logged["margin"]] == [0, 1, 2, 3]
    assert [m for _, m in logged["margin"]] == pytest.approx([0.0, 0.01, 0.04, 0.08])
    assert runs["02-stage1-1"]["acc"] == [(0, 0.0), (1, 1.0)]
    assert data["curves"]["sft"] == {"source": "manifest metrics.losses", "loss": [(1, 3.0), (2, 2.5), (3, 2.25)]}


def _events(folder, tag, values):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    w = EventFileWriter(str(folder))
    for step, v in values:
        s = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=v)])
        w.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=s))
    w.close()


def test_tensorboard_event_files_come_first(run):
    _events(run / "sft" / "train" / "runs" / "a", "train/loss", [(2, 1.5), (1, 2.0)])
    _events(run / "sft" / "train" / "runs" / "b", "train/learning_rate", [(1, 1e-5)])
    assert curves.tensorboard_scalars(run / "sft") == {
        "train/loss": [(1, 2.0), (2, 1.5)], "train/learning_rate": [(1, pytest.approx(1e-5))]
    }  # fmt: skip
    assert curves.sft(run / "sft", {"metrics": {"losses": [9.0]}}) == {
        "source": "TensorBoard event files", "loss": [(1.0, 2.0), (2.0, 1.5)]
    }  # fmt: skip
    dpo = run / "dpo" / "01-stage1-0"
    for tag, vals in (("loss", [0.7, 0.6]), ("acc", [0.0, 1.0]), ("chosen_reward", [0.1, 0.3]),
                      ("reject_reward", [0.1, 0.1])):  # fmt: skip
        _events(dpo / "tensorboard" / tag, f"train/{tag}", list(enumerate(vals)))
    _events(dpo / "tensorboard" / "eval", "eval/loss", [(0, 9.0)])  # the training loss is what the curve shows
    c = curves.dpo_run(dpo, None, STEP)
    assert c["source"] == "TensorBoard event files" and c["loss"] == [
        (0.0, pytest.approx(0.7)),
        (1.0, pytest.approx(0.6)),
    ]
    assert c["margin"] == [(0.0, 0.0), (1.0, pytest.approx(0.2))]


def test_recipe_values_carry_the_tag_of_their_line_and_the_profile_mark(tmp_path, monkeypatch):
    monkeypatch.setattr(core, "ROOT", tmp_path)
    _write(tmp_path / "recipes" / "r" / "sft.yaml", (
        "learning_rate: 2.0e-5    # [P] Table 5\n"
        "seed: 42                 # [C] not published\n"
        "roles: {user: [user]}    # [D] from the template\n"
        "plain: 1\n"
    ))  # fmt: skip
    _write(tmp_path / "recipes" / "profiles" / "tiny.yaml", "sft:\n  seed: 7\n")
    rendered = {"learning_rate": 2e-5, "seed": 7, "roles": {"user": ["user"]}, "plain": 1}
    rows = tags.tagged({"path": "recipes/r/sft.yaml", "profile": "tiny", "rendered": rendered})
    assert rows == [
        ("learning_rate", 2e-5, "P", "Table 5", False),
        ("seed", 7, "C", "not published", True),
        ("roles.user.0", "user", "D", "from the template", False),
        ("plain", 1, None, None, False),
    ]
    assert tags.tagged({"path": "recipes/r/dpo.yaml", "rendered": ["--model.beta", "0.1"]}) == []


# --- the page ------------------------------------------------------------------------------------------------------
def test_the_page_links_resolve_loads_nothing_and_shows_every_sample(data, tmp_path):
    text = render.page(data)
    page = Page(text)
    assert page.links and all(h.startswith("#") for h in page.links)
    assert {h[1:] for h in page.links} <= page.ids
    assert all(src.startswith("data:") for src in page.loads), page.loads
    assert "http://" not in text and "https://" not in text
    expected = {
        f"sample-{task}-{r['doc_id']}": "1" if r["correct"] else "0"
        for task, t in data["evaluations"][0]["tasks"].items()
        for r in t["rows"]
    }
    assert page.rows == expected and len(expected) == 6 + 4 + 3 + 2 + 6 * 2
    assert 'href="#samples-medqa_4options">50</a>' in text  # the measured cell opens the task's samples
    assert "[P]" in text or "[C]" in text  # the SFT values, tagged from the recipe file


def test_strings_from_the_run_are_escaped(data):
    text = render.page(data)
    assert text.count("<script>") == 1  # the page's own
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; what &quot;dose&quot;?" in text
    assert "&lt;b&gt;no answer&lt;/b&gt;" in text and "<b>no answer</b>" not in text


def test_the_driver_writes_the_page_and_names_a_missing_run(run, tmp_path, capsys):
    out = tmp_path / "r" / "page.html"
    assert report.main(["--run", str(run), "--out", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>") and f"report: {out}" in capsys.readouterr().out
    from scripts.lib import cli

    assert cli.edge(report.main, ["--run", str(tmp_path / "nothing")]) == 1
    assert re.search(r"no recipe run folder .*nothing", capsys.readouterr().err)
    (tmp_path / "empty").mkdir()
    assert cli.edge(report.main, ["--run", str(tmp_path / "empty")]) == 1
    assert "not a recipe run folder" in capsys.readouterr().err


# --- the plan's cost -----------------------------------------------------------------------------------------------
def test_the_plan_shows_each_jobs_measured_wall_and_why_the_smoke_profile_has_no_footprint(data):
    cost = data["cost"]
    assert cost["all"] is None and all(j["footprint"] is None for j in cost["jobs"].values())
    walls = {n: (j["folder"], j["wall_s"]) for n, j in cost["jobs"].items()}
    assert walls == {"sft": ("sft", 77.6), "dpo-stage1-1": ("dpo/01-stage1-0", 38.2),
                     "dpo-stage1-2": ("dpo/02-stage1-1", 41.8), "eval": ("eval-mcqa", 77.6),
                     "verify": ("verify", None)}  # a DPO job: the run it made; verify writes no manifest  # fmt: skip
    assert cost["wall_s"] == pytest.approx(77.6 + 38.2 + 41.8 + 77.6)
    text = render.page(data)
    plan = text[text.index('<section id="plan">') :]
    assert "profile cpu-tiny sets them to null" in plan and "235.2 s" in plan
    assert re.search(r'id="plan-sft">(<td>.*?</td>){7}<td>-</td><td>-</td><td>-</td>.*?77\.6 s', plan)


def test_published_hours_give_gpu_hours_energy_and_co2_as_the_paper(run):
    """P-BETA's 8B SFT: 17.14 h on 32 H100 = 548.48 GPU-h, 61.42 kg CO2 (Appendix D)."""
    f = run / "plan" / "sft.json"
    plan = json.loads(f.read_text())
    plan["job"].update(hours=17.14, gpus=32, nodes=8)
    _write(f, plan)
    d = collect.collect(run, STEP)
    gpu_h, kwh, co2 = d["cost"]["jobs"]["sft"]["footprint"]
    assert gpu_h == pytest.approx(548.48) and co2 == pytest.approx(61.42, abs=0.005)
    assert kwh == pytest.approx(548.48 * chain.KW_PER_GPU) and d["cost"]["all"] == (gpu_h, kwh, co2)
    plan = render.page(d).split('<section id="plan">')[1]
    assert "548.48" in plan and "61.42" in plan and "sets them to null" not in plan
    assert re.search(r'class="total">.*?<td>548\.48</td><td>388\.74</td><td>61\.42</td>', plan)


# --- diff-eval -----------------------------------------------------------------------------------------------------
def test_a_diff_eval_comparison_of_the_runs_evaluation_is_shown_with_its_flips(run, tmp_path):
    runs = tmp_path / "runs"
    d = collect.collect(run, STEP, diff_root=runs / "diff-eval")
    (x,) = d["diffs"]  # ours.json (side A in the run), not theirs.json
    assert x["file"] == str(runs / "diff-eval" / "ours.json")
    (t,) = x["tasks"]
    assert (t["n"], t["b"], t["c"], t["p"]) == (20, 2, 5, pytest.approx(58 / 128))
    text = render.page(d)
    page = Page(text)
    flips = {i for i in page.ids if i.startswith("diff-0-medqa_4options-") and i.split("-")[-1].isdigit()}
    assert flips == {f"diff-0-medqa_4options-{i}" for i in (0, 1, 10, 11, 12, 13, 14)}
    assert {h[1:] for h in page.links} <= page.ids
    section = text[text.index('<section id="diff">') : text.index("</section>", text.index('<section id="diff">'))]
    assert re.search(r"<td>batch size</td><td><code>1</code></td><td><code>8</code></td><td>differs</td>", section)
    assert "&lt;script&gt;alert(&quot;x&quot;)" in section and "<script>" not in section
    assert re.search(r">all</b></td><td></td><td>20</td><td>50</td><td>65</td><td>2</td><td>5</td><td>0.4531<", section)
    both = collect.collect(run, STEP, diff_files=[runs / "diff-eval" / "theirs.json"], diff_root=runs / "diff-eval")
    assert [x["file"] for x in both["diffs"]] == [str(runs / "diff-eval" / f) for f in ("theirs.json", "ours.json")]
    with pytest.raises(AloeError, match=r"verify/verify.json: not a diff-eval comparison"):
        collect.collect(run, STEP, diff_files=[run / "verify" / "verify.json"])


# --- judged suites ---------------------------------------------------------------------------------------------------
def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_judged_suites_per_sample_with_the_judges_verdict(data, run):
    suites = {s["stage"]: s for s in data["judged"]}
    assert list(suites) == ["safety", "openmedqa", "fields"]
    logged = _lines(run / "eval-safety" / "out" / "per_prompt.jsonl")
    safety = suites["safety"]
    assert [(r["id"], r["ok"], r["verdict"]) for r in safety["rows"]] == [
        (x["id"], {"safe": True, "unsafe": False}.get(x["label"]), x["label"] or "unparsed") for x in logged
    ]
    assert {x["label"] for x in logged} == {"safe", "unsafe", None} and safety["rows"][0]["detail"] == "S1, S9"
    cou = [x for x in logged if x["style"] == "cou"]
    assert safety["counts"]["seval_style_cou"] == (sum(x["label"] == "unsafe" for x in cou),
                                                   sum(x["label"] is not None for x in cou))  # fmt: skip
    omq = suites["openmedqa"]
    assert [r["ok"] for r in omq["rows"]] == [True, False, False, True] and omq["counts"] == {"openmedqa_open": (2, 4)}
    assert omq["rows"][2]["verdict"] == "unparsed (wrong)" and omq["rows"][0]["reference"] == "Diagnosis 0"
    per = _lines(run / "eval-fields" / "per_sample.jsonl")
    cardio = [x for x in per if x["field"] == "Cardiology"]
    fields_ = suites["fields"]
    assert fields_["counts"]["field_cardiology"] == (sum(x["acc"] == 1 for x in cardio), len(cardio)) and cardio
    assert fields_["selects"]["field_cardiology"] == "field=Cardiology"
    assert {r["groups"]["field"] for r in fields_["rows"]} == {"Cardiology", "Hematology", "unlabelled"}
    assert fields_["rows"][0]["judge_output"].startswith("Reasoning. The category is: ")


def test_judged_verify_rows_open_their_samples_with_the_filter_set_on_a_0_1_scale(data, run):
    tables = {t["id"]: t for t in data["tables"]}
    (cou,), (cardio,) = tables["table-verify-safety"]["rows"], tables["table-verify-fields"]["rows"]
    k, n = data["judged"][0]["counts"]["seval_style_cou"]
    assert (cou["k"], cou["n"], cou["link"], cou["select"]) == (k, n, "judged-eval-safety", "style=cou")
    assert (
        cou["ci"] == pytest.approx(tuple(x / 100 for x in wilson(k, n))) and tables["table-verify-safety"]["top"] == 1
    )
    assert 0 <= cardio["ci"][0] <= cardio["ci"][1] <= 1 and cardio["link"] == "judged-eval-fields"
    text = render.page(data)
    assert 'href="#judged-eval-fields" data-select="field=Cardiology">0.5</a>' in text
    section = text[text.index('<section id="judged">') :]
    assert re.search(r'<select data-key="field"><option value="">all</option><option value="Cardiology">'
                     r"Cardiology \(\d+\)</option>", section)  # fmt: skip
    assert '<a href="#sample-medqa_4options-0">lm-eval sample</a>' in section
    assert "&lt;script&gt;alert(&quot;x&quot;)" in section  # the model's answer
    page = Page(text)
    assert {h[1:] for h in page.links} <= page.ids


# --- a model's evaluations -------------------------------------------------------------------------------------------
def test_a_models_evaluations_make_the_same_page_without_plan_or_curves(tmp_path, capsys):
    folder = tmp_path / "runs" / "eval" / "org_tiny-model"
    mcqa_stage(folder / "mcqa")
    verify = tmp_path / "results" / "verify"
    results = f"{folder}/mcqa/lm_eval/{MODEL}/results_{STAMP}.json"
    row = {"column": "medqa_4options", "task": "medqa_4options", "reported": 45.0, "measured": 50.0, "stderr": 22.4,
           "delta": 5.0, "tolerance": 2.0, "result": "FAIL"}  # fmt: skip
    for name, read in (("tiny-model-fixture-0-shot", results), ("other-fixture-0-shot", "/elsewhere/results_x.json")):
        _write(verify / name / "verify.json", {"model": "tiny", "table": "fixture", "setting": "0-shot",
               "baseline": None, "results": read, "rows": [row]})  # fmt: skip
    out = tmp_path / "page.html"
    args = ["--model", "org/tiny-model", "--runs", str(tmp_path / "runs"), "--verify", str(verify), "--out", str(out)]
    assert report.main(args) == 0
    text = out.read_text()
    page = Page(text)
    assert "<title>Aloe evaluation report: org_tiny-model</title>" in text
    assert 'id="plan"' not in text and 'id="curves"' not in text and "table-tiny-model-fixture-0-shot" in page.ids
    assert "table-other-fixture-0-shot" not in page.ids and {h[1:] for h in page.links} <= page.ids
    assert 'href="#samples-medqa_4options">50</a>' in text and "sample-medqa_4options-5" in page.ids
    from scripts.lib import cli

    assert cli.edge(report.main, ["--model-eval", str(tmp_path / "runs")]) == 1
    assert "not a model evaluation folder" in capsys.readouterr().err
