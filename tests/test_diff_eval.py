"""`make diff-eval` on lm-eval-shaped output folders built here: a planted difference in settings is named (and no
other), exactly the planted flips are counted as b and c, McNemar's exact p is the hand-computed one, the same
doc_id holding another question is an error, and a raw lm-eval folder, a kit stage folder and a run folder all load
(the manifest only adding to what lm-eval recorded)."""

import hashlib
import json

import pytest
from conftest import run_py

from evals import diff
from scripts import core
from scripts.core import AloeError
from scripts.drivers import diff_eval

pytestmark = pytest.mark.unit

MODEL = "org__tiny-model"  # the folder lm-eval writes a model's files in (model_name_sanitized)
DATE = "2026-01-02T10-00-00.000001"
LETTERS = "ABCD"


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def mc_sample(doc_id, question, target, choice, task="medqa_4options"):
    """One line of --log_samples for a multiple-choice task: the chosen option has the highest log-likelihood."""
    doc = {"id": f"{task}-{doc_id}", "question": question, "choices": ["w", "x", "y", "z"], "answer": target}
    prompt = f"Question: {question}\nAnswer:"
    lls = [[str(-1.0 if i == choice else -5.0 - i), "False"] for i in range(4)]
    return {"doc_id": doc_id, "doc": doc, "target": target,
            "arguments": {f"gen_args_{i}": {"arg_0": prompt, "arg_1": f" {LETTERS[i]}"} for i in range(4)},
            "resps": [[r] for r in lls], "filtered_resps": lls, "filter": "none", "metrics": ["acc", "acc_norm"],
            "doc_hash": sha(json.dumps(doc, indent=2, ensure_ascii=False)), "prompt_hash": sha(prompt),
            "target_hash": sha(str(target)), "acc": float(choice == target), "acc_norm": float(choice == target)}  # fmt: skip


def gen_sample(doc_id, question, target, text, filt="none", metric="exact_match", value=None):
    """One line of --log_samples for a generative task (one line per filter)."""
    doc = {"problem": question, "answer": target}
    right = float(text.strip() == target) if value is None else value
    return {"doc_id": doc_id, "doc": doc, "target": target, "arguments": {"gen_args_0": {"arg_0": question}},
            "resps": [[text]], "filtered_resps": [text], "filter": filt, "metrics": [metric],
            "doc_hash": sha(json.dumps(doc, indent=2)), "prompt_hash": sha(question), "target_hash": sha(target),
            metric: right}  # fmt: skip


def questions(n, task="medqa_4options"):
    return [f"Which drug treats condition {i} of {task}?" for i in range(n)]


def lm_eval_output(root, samples, date=DATE, address="0x7f00aa", **over):
    """An lm-eval --output_path folder: <root>/<MODEL>/results_<date>.json and samples_<task>_<date>.jsonl, with the
    settings lm-eval 0.4.13 records (each overridable: batch_size, chat_template, num_fewshot, ...)."""
    s = {"batch_size": "1", "chat_template": None, "num_fewshot": 0, "backend": "hf", "dtype": "bfloat16",
         "lm_eval": "0.4.13", "torch": "2.8.0+cu128", "transformers": "4.57.1", "limit": None,
         "model": "org/tiny-model"} | over  # fmt: skip
    folder = root / MODEL
    folder.mkdir(parents=True, exist_ok=True)
    for task, rows in samples.items():
        (folder / f"samples_{task}_{date}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    configs = {
        task: {"task": task, "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": f"{root}/{task}.jsonl"}},
               "doc_to_text": "Question: {{question}}\nAnswer:", "output_type": s.get("output_type", "multiple_choice"),
               "num_fewshot": s["num_fewshot"], "metric_list": [{"metric": "acc", "aggregation": "mean"}],
               "fewshot_config": {"sampler": "default", "process_docs": f"<function official_test at {address}>"},
               "metadata": {"version": 1.0, "pretrained": str(root / "model")}}
        for task in samples
    }  # fmt: skip
    results = {
        "results": {t: {"alias": t, "acc,none": sum(r.get("acc", 0) for r in rows) / len(rows)}
                    for t, rows in samples.items()},
        "group_subtasks": {}, "configs": configs, "versions": dict.fromkeys(samples, 1.0),
        "n-shot": dict.fromkeys(samples, s["num_fewshot"]),
        "n-samples": {t: {"original": len(rows), "effective": len(rows)} for t, rows in samples.items()},
        "config": {"model": s["backend"], "model_args": f"pretrained={s['model']},dtype={s['dtype']}",
                   "model_dtype": f"torch.{s['dtype']}", "batch_size": s["batch_size"], "batch_sizes": [],
                   "device": "cuda", "limit": s["limit"], "gen_kwargs": {}, "random_seed": 0, "numpy_seed": 1234,
                   "torch_seed": 1234, "fewshot_seed": 1234},
        "git_hash": "abc1234", "date": 1.7e9, "pretty_env_info": f"PyTorch version: {s['torch']}\nIs debug build: False",
        "transformers_version": s["transformers"], "lm_eval_version": s["lm_eval"],
        "task_hashes": {t: sha(t + str(s["chat_template"])) for t in samples},
        "model_source": s["backend"], "model_name": s["model"], "model_name_sanitized": MODEL,
        "system_instruction": None, "system_instruction_sha": None,
        "fewshot_as_multiturn": bool(s["chat_template"]) or None, "chat_template": s["chat_template"],
        "chat_template_sha": sha(s["chat_template"]) if s["chat_template"] else None, "max_length": 8192,
    }  # fmt: skip
    (folder / f"results_{date}.json").write_text(json.dumps(results, indent=2))
    return root


def kit_stage(stage, samples, **over):
    """A kit evaluation stage folder: lm_eval/ and a finished manifest recording its hash and the recipe's values."""
    lm_eval_output(stage / "lm_eval", samples, **over)
    rendered = {"num_fewshot": 0, "apply_chat_template": False, "batch_size": 1, "dtype": "bfloat16", "backend": "hf"}
    manifest = {
        "schema": "aloe-repro/manifest@2", "stage": "eval", "status": "done", "key": "k",
        "recipe": {"path": "recipes/aloe-beta-8b/eval.yaml", "profile": None, "sha256": "r", "rendered": rendered},
        "inputs": {}, "environment": {"eval": "lock1"}, "code": {"sha256": "c", "files": []},
        "outputs": {"lm_eval": {"path": str(stage / "lm_eval"), "sha256": core.sha256_path(stage / "lm_eval")}},
        "tools": {"lm_eval": "0.4.13", "torch": "2.8.0+cu128", "transformers": "4.57.1", "vllm": None},
        "launcher": {"kind": "local", "host": "h"}, "git_sha": "g", "started": "s", "finished": "f", "wall_s": 1.0,
        "metrics": {},
    }  # fmt: skip
    core.write_json_atomic(stage / "manifest.json", manifest)
    return stage


# the model's choices on 20 MedQA questions (target: option 0 each): A right on 0-9; B flips 0-1 to wrong (b = 2)
# and 10-14 to right (c = 5); 2-9 right on both, 15-19 wrong on both
A_CHOICES = [0] * 10 + [1, 2, 3, 1, 2] + [3] * 5
B_CHOICES = [2, 3] + [0] * 8 + [0] * 5 + [3] * 5


def medqa(choices):
    return {"medqa_4options": [mc_sample(i, q, 0, c) for i, (q, c) in enumerate(zip(questions(20), choices))]}


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [(0, 5, 0.0625), (5, 0, 0.0625), (1, 9, 22 / 1024), (2, 8, 112 / 1024), (3, 3, 1.0), (0, 0, 1.0), (0, 1, 1.0)],
)
def test_mcnemar_exact_is_the_two_sided_binomial_test_of_the_discordant_pairs(b, c, p):
    assert diff.mcnemar_exact(b, c) == pytest.approx(p, rel=1e-12)


def test_exactly_the_planted_flips_are_counted_with_their_answers(tmp_path):
    a = diff.load(lm_eval_output(tmp_path / "a", medqa(A_CHOICES)))
    b = diff.load(lm_eval_output(tmp_path / "b", medqa(B_CHOICES)))
    r = diff.compare(a, b)
    [t] = r["tasks"]
    assert (t["task"], t["n"], t["b"], t["c"]) == ("medqa_4options", 20, 2, 5)
    assert (t["acc_a"], t["acc_b"]) == (0.5, 0.65)
    assert t["p"] == pytest.approx(2 * (1 + 7 + 21) / 2**7)
    assert [(f["doc_id"], f["right_in"], f["answer_a"], f["answer_b"], f["target"]) for f in t["flips"]] == [
        (0, "a", "A", "C", "A"), (1, "a", "A", "D", "A"),
        (10, "b", "B", "A", "A"), (11, "b", "C", "A", "A"), (12, "b", "D", "A", "A"), (13, "b", "B", "A", "A"),
        (14, "b", "C", "A", "A"),
    ]  # fmt: skip
    assert t["flips"][2]["question"] == "Which drug treats condition 10 of medqa_4options?"
    assert (r["pooled"]["b"], r["pooled"]["c"], r["settings"]) == (2, 5, [])  # same settings: nothing named
    md = diff.report_markdown(r, show=3)
    assert "| medqa_4options | acc | 20 | 50.0 | 65.0 | 2 | 5 | 0.4531 |" in md
    assert "### medqa_4options: 7 flipped (4 more in the JSON)" in md and "| 11 |" not in md


@pytest.mark.parametrize(
    ("over", "named"),
    [
        ({"batch_size": "8"}, {"batch size": ("1", "8")}),
        ({"chat_template": "{{ bos }}{% for m in messages %}{{ m.content }}{% endfor %}"},
         {"chat template": ("off", "sha256 " + sha("{{ bos }}{% for m in messages %}{{ m.content }}{% endfor %}")[:12]),
          "few-shot as multi-turn": ("off", "on"), "lm-eval task hash (docs, prompts, targets)": (None, None)}),
        ({"num_fewshot": 5}, {"num_fewshot": ("0", "5")}),
        ({"output_type": "generate_until"}, {"scoring (output_type)": ("multiple_choice", "generate_until")}),
        ({"backend": "vllm", "dtype": "float16"},
         {"backend": ("hf", "vllm"), "dtype": ("bfloat16", "float16"), "loaded dtype": ("torch.bfloat16", "torch.float16")}),
        ({"lm_eval": "0.4.9", "torch": "2.6.0", "transformers": "4.51.0"},
         {"lm-eval": ("0.4.13", "0.4.9"), "torch": ("2.8.0+cu128", "2.6.0"), "transformers": ("4.57.1", "4.51.0")}),
    ],
)  # fmt: skip
def test_a_planted_difference_in_settings_is_named_and_nothing_else(tmp_path, over, named):
    # the two sides' task configs differ in their function addresses and data paths only: not a difference
    a = diff.load(lm_eval_output(tmp_path / "a", medqa(A_CHOICES), address="0x7f0001"))
    b = diff.load(lm_eval_output(tmp_path / "b", medqa(A_CHOICES), address="0x7f0002", **over))
    rows = {s["setting"]: s for s in diff.compare(a, b)["settings"]}
    assert set(rows) == set(named)
    for k, (va, vb) in named.items():
        assert rows[k]["status"] == "differs"
        if va is not None:
            assert (rows[k]["a"], rows[k]["b"]) == (va, vb)
    task_rows = [s for s in rows.values() if s["tasks"] is not None]
    assert all(s["tasks"] == "every task" for s in task_rows)


def test_a_different_question_at_the_same_doc_id_is_an_error(tmp_path):
    a = diff.load(lm_eval_output(tmp_path / "a", medqa(A_CHOICES)))
    other = medqa(B_CHOICES)
    other["medqa_4options"][3] = mc_sample(3, "A question of another data set?", 0, 0)
    b = diff.load(lm_eval_output(tmp_path / "b", other))
    with pytest.raises(diff.DiffError, match=r"task medqa_4options, doc_id 3: a different question on each side"):
        diff.compare(a, b)


def test_tasks_on_one_side_filters_and_metrics_that_are_not_right_or_wrong(tmp_path):
    qs = questions(4, "gsm8k")
    gen = lambda texts: {
        "gsm8k": [gen_sample(i, q, "7", t, filt) for filt in ("strict-match", "flexible-extract")
                  for i, (q, t) in enumerate(zip(qs, texts))],
        "meqsum": [gen_sample(i, q, "s", "s", metric="rouge1", value=0.42) for i, q in enumerate(qs)],
    }  # fmt: skip
    a = diff.load(lm_eval_output(tmp_path / "a", medqa(A_CHOICES) | gen(["7", "7", "x", "x"])))
    b = diff.load(
        lm_eval_output(
            tmp_path / "b", gen(["7", "x", "7", "x"]) | {"careqa_en": [mc_sample(0, "Q?", 1, 1, "careqa_en")]}
        )
    )
    r = diff.compare(a, b)
    assert r["one_side"] == {"a": ["medqa_4options"], "b": ["careqa_en"]}
    assert [t["task"] for t in r["not_compared"]] == ["meqsum"] and "rouge1 = 0.42" in r["not_compared"][0]["why"]
    by = {t["task"]: t for t in r["tasks"]}
    assert set(by) == {"gsm8k [flexible-extract]", "gsm8k [strict-match]"}
    t = by["gsm8k [strict-match]"]
    assert (t["metric_a"], t["n"], t["b"], t["c"]) == ("exact_match", 4, 1, 1)
    assert [(f["doc_id"], f["answer_a"], f["answer_b"]) for f in t["flips"]] == [(1, "7", "x"), (2, "x", "7")]


def test_a_raw_lm_eval_folder_a_kit_stage_folder_and_a_run_folder_all_load(tmp_path):
    raw = lm_eval_output(tmp_path / "elsewhere", medqa(A_CHOICES))
    stage = kit_stage(tmp_path / "runs" / "r1" / "eval-mcqa", medqa(A_CHOICES))
    assert diff_eval.evaluation(raw) == (raw, None)
    assert diff_eval.evaluation(raw / MODEL / f"results_{DATE}.json")[0] == raw / MODEL / f"results_{DATE}.json"
    lm_eval, manifest = diff_eval.evaluation(stage)
    assert lm_eval == stage / "lm_eval" and manifest["stage"] == "eval"
    assert diff_eval.evaluation(stage.parent) == (lm_eval, manifest)  # the run folder: its one evaluation
    # the same lm-eval output read as a kit stage and as a raw folder: the manifest only adds settings
    rows = diff.compare(diff.load(lm_eval, manifest), diff.load(raw))["settings"]
    assert rows and {s["status"] for s in rows} == {"only a"}
    assert {s["setting"] for s in rows} >= {"kit recipe batch_size", "kit environment lock", "kit launcher"}


def test_ambiguous_or_changed_inputs_are_clear_errors(tmp_path):
    run = tmp_path / "runs" / "r1"
    kit_stage(run / "eval-mcqa", medqa(A_CHOICES))
    kit_stage(run / "eval-open", medqa(A_CHOICES))
    with pytest.raises(AloeError, match=r"several evaluations \(eval-mcqa, eval-open\)"):
        diff_eval.evaluation(run)
    lm_eval_output(tmp_path / "two", medqa(A_CHOICES))
    (tmp_path / "two" / "other-model").mkdir()
    (tmp_path / "two" / "other-model" / f"results_{DATE}.json").write_text("{}")
    with pytest.raises(AloeError, match=r"several models \(org__tiny-model, other-model\)"):
        diff.load(tmp_path / "two")
    (run / "eval-mcqa" / "lm_eval" / MODEL / f"results_{DATE}.json").write_text("{}")
    with pytest.raises(AloeError, match="changed since its stage recorded it"):
        diff_eval.evaluation(run / "eval-mcqa")
    nolog = tmp_path / "nolog" / MODEL
    nolog.mkdir(parents=True)
    (nolog / f"results_{DATE}.json").write_text('{"results": {}}')
    with pytest.raises(AloeError, match="run lm-eval with --log_samples"):
        diff.load(nolog.parent)


def test_the_newest_results_and_its_own_samples_are_read(tmp_path):
    root = lm_eval_output(tmp_path / "a", medqa(B_CHOICES), date="2025-06-01T10-00-00.000001", batch_size="64")
    lm_eval_output(root, medqa(A_CHOICES))
    side = diff.load(root)
    assert side["results"].endswith(f"results_{DATE}.json") and side["settings"]["run"]["batch size"] == "1"
    assert sum(r["right"] for r in side["units"]["medqa_4options"]["rows"].values()) == 10


def test_the_driver_prints_the_table_and_writes_the_json(tmp_path):
    a = kit_stage(tmp_path / "runs" / "r1" / "eval-mcqa", medqa(A_CHOICES))
    b = lm_eval_output(tmp_path / "elsewhere" / "out", medqa(B_CHOICES), batch_size="8")
    p = run_py("scripts.drivers.diff_eval", "--a", a.parent, "--b", b, "--runs", tmp_path / "runs", "--show", 2)
    assert "| batch size | 1 | 8 | - |" in p.stdout
    assert "| medqa_4options | acc | 20 | 50.0 | 65.0 | 2 | 5 | 0.4531 |" in p.stdout
    out = tmp_path / "runs" / "diff-eval" / "runs_r1--elsewhere_out"
    r = json.loads(out.with_name(out.name + ".json").read_text())
    assert r["schema"] == diff.SCHEMA and (r["tasks"][0]["b"], r["tasks"][0]["c"]) == (2, 5)
    assert len(r["tasks"][0]["flips"]) == 7 and out.with_name(out.name + ".md").read_text() in p.stdout
    bad = run_py("scripts.drivers.diff_eval", "--a", a, "--b", tmp_path / "missing", check=False)
    assert bad.returncode == 1 and "missing: no such file or folder" in bad.stderr
