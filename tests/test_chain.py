"""The whole chain on the tiny model (shared `make smoke` run): each stage's output is a working model,
different from its input; DPO ran 6 times in order, each from the previous output; the merge is
reproducible; the merged and final models stop at <|eot_id|>; a rerun skips everything."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_py, tool

from scripts import core
from scripts.lib import manifest as mf
from scripts.lib import venv

pytestmark = pytest.mark.chain


def outputs(run, stage):
    return mf.read(run / stage)["outputs"]


def test_every_stage_output_loads_generates_and_differs_from_its_input(chain):
    runs, run, _ = chain
    kit = runs / "tiny-kit"
    dpo_runs = mf.read(run / "dpo")["runs"]
    pairs = [
        (outputs(run, "sft")["model"]["path"], kit / "base"),
        (outputs(run, "merge")["model"]["path"], outputs(run, "sft")["model"]["path"]),
    ]
    pairs += [(r["output"]["path"], r["model_in"]) for r in dpo_runs]
    for model, ref in pairs:
        res = tool("eval", "check_model.py", model, "--ref", ref)
        assert res["generated_tokens"] > 0, model
        assert res["tensors_changed"] > 0 and res["max_abs_change"] > 0, f"{model} has the weights of {ref}"


def test_the_data_prep_outputs_are_what_axolotl_and_openrlhf_read(chain):
    _, run, _ = chain
    data = outputs(run, "data")
    assert mf.read(run / "sft")["inputs"]["data"] == data["sft"]  # axolotl preprocessed and trained on it
    assert data["sft"]["path"].endswith("data/sft.jsonl") and (run / "data" / "work" / "report.json").exists()


def test_sft_trains_every_assistant_turn_terminator_and_masks_the_other_turns(chain):
    runs, run, _ = chain
    res = tool("sft", "sft_turns.py", outputs(run, "sft")["prepared"]["path"], runs / "tiny-kit" / "base")
    turns = res["turns"]
    # the General Collection's tool results reach the Llama 3.1 template as its `ipython` turns (sft.yaml `roles`)
    assert res["rows"] > 0 and {t["role"] for t in turns} == {"system", "user", "assistant", "ipython"}, turns[:4]
    for t in turns:
        if t["role"] == "assistant":
            assert t["eot_trained"] and t["trained_tokens"] > 1, t  # the answer and its closing <|eot_id|>
        else:
            assert t["trained_tokens"] == 0, t


def test_dpo_ran_six_times_in_order_each_from_the_previous_output(chain):
    _, run, _ = chain
    m = mf.read(run / "dpo")
    runs = m["runs"]
    assert [(r["phase"], r["index"]) for r in runs] == [("stage1", i) for i in range(5)] + [("stage2", 0)]
    assert runs[0]["model_in"] == outputs(run, "merge")["model"]["path"]
    for prev, cur in zip(runs, runs[1:]):
        assert cur["model_in"] == prev["output"]["path"]
        assert (
            mf.read(ROOT / cur["output"]["path"].rsplit("/model", 1)[0])["inputs"]["model"]["sha256"]
            == prev["output"]["sha256"]
        )
    data = outputs(run, "data")
    assert [r["data"] for r in runs] == [data[f"dpo_chunk_{i}"]["path"] for i in range(5)] + [
        data["dpo_redteam"]["path"]
    ]
    assert m["outputs"]["model"] == runs[-1]["output"]
    for r in runs:  # every run starts as its own reference: the loss of its first step is ln 2
        assert abs(r["loss_first"] - math.log(2)) < 1e-3 and r["reward_margin_first"] == 0, r


@pytest.mark.parametrize("fault", ["nan", "inf"])
def test_check_model_fails_on_a_non_finite_weight(chain, tmp_path, fault):
    runs, _, _ = chain
    model = tmp_path / "model"
    shutil.copytree(runs / "tiny-kit" / "base", model)
    assert venv.run("eval", ["plant_fault.py", model, fault]).returncode == 0
    p = venv.run("eval", ["check_model.py", model], capture=True)
    assert p.returncode != 0 and "non-finite (NaN or inf) weights" in p.stderr, p.stderr[-2000:]


def test_merging_twice_with_the_seed_is_bit_identical(chain, tmp_path):
    _, run, _ = chain
    cfg, seed = run / "merge" / "mergekit.yaml", mf.read(run / "merge")["seed"]
    p = venv.run("merge", ["mergekit-yaml", cfg, tmp_path / "again", "--random-seed", seed], capture=True)
    assert p.returncode == 0, p.stderr[-2000:]
    first = run / "merge" / "model" / "model.safetensors"
    assert core.sha256_path(tmp_path / "again" / "model.safetensors") == core.sha256_path(first)


def test_merged_and_final_models_stop_at_eot_but_the_base_does_not(chain):
    runs, run, _ = chain
    for model in (outputs(run, "merge")["model"]["path"], mf.read(run / "dpo")["outputs"]["model"]["path"]):
        res = tool("eval", "check_model.py", model, "--force-eot-at", 2)
        assert res["stopped_at_eot"], (model, res)
    base = tool("eval", "check_model.py", runs / "tiny-kit" / "base", "--force-eot-at", 2)
    assert not base["stopped_at_eot"]  # the check can fail: the base model's eos is <|end_of_text|> only


def test_a_second_smoke_skips_every_stage(chain):
    runs, run, _ = chain
    p = run_py("scripts.drivers.smoke", "--runs", runs)
    jobs = ["tiny-kit", "data", "sft", "merge", "dpo", "medprompt-medqa_4options", "eval"]  # the DPO runs: one job
    logs = {job: (run / "logs" / f"{job}.log").read_text() for job in jobs}  # each job's output (local_jobs.py)
    for stage, job in zip(("tiny-kit", "data", "sft", "merge", "dpo", "medprompt", "eval"), jobs):
        assert f"[{stage}] skipped" in logs[job], stage
    assert "[dpo-run]" not in logs["dpo"]  # the stage is done: its runs are not even looked at
    for started in ("$ axolotl", "$ mergekit-yaml", "openrlhf", "$ lm-eval", "members:"):
        assert started not in p.stdout and not any(started in log for log in logs.values()), started
    ended = [line for line in p.stdout.splitlines() if "] end " in line]  # one line per job, each skipped
    assert len(ended) == len(jobs) and all(line.endswith("exit 0, skipped") for line in ended), ended
    assert p.stdout.count("(skipped)") == 7  # the summary's rows


def test_sft_killed_after_its_second_checkpoint_resumes_there_and_ends_as_if_never_killed(chain, tmp_path):
    runs, run, _ = chain
    name = "aloe-beta-8b-cpu-tiny-resume"  # the SFT rows in file order: see recipes/profiles/cpu-tiny-resume.yaml

    def private(root):  # a copy of the chain's kit and data, so the shared outputs stay intact
        (root / name).mkdir(parents=True)
        subprocess.run(["cp", "-r", runs / "tiny-kit", root / "tiny-kit"], check=True)
        subprocess.run(["cp", "-r", run / "data", root / name / "data"], check=True)
        return ["scripts.sft", "--profile", "cpu-tiny-resume", "--runs", root]

    run_py(*private(tmp_path / "whole"))
    whole = mf.read(tmp_path / "whole" / name / "sft")
    args = [sys.executable, "-m", *private(tmp_path / "killed")]
    sft_dir = tmp_path / "killed" / name / "sft"
    proc = subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    second = sft_dir / ".partial" / "model" / "checkpoint-4" / "trainer_state.json"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not second.exists():
        time.sleep(0.05)
    assert proc.poll() is None, "sft finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # as a preemption does: no handler runs
    proc.wait()
    assert mf.read(sft_dir / ".partial")["status"] == "running"  # the attempt's record
    assert mf.read(sft_dir) is None  # manifest.json holds finished builds only
    p = run_py(*args[2:])  # the same command again
    assert "resuming the unfinished attempt (running)" in p.stdout and "(step 4)" in p.stdout
    m = mf.read(sft_dir)
    assert (
        m["status"] == "done"
        and m["metrics"]["resumed_from_step"] == 4
        and whole["metrics"]["resumed_from_step"] is None
    )
    assert [a["status"] for a in m["attempts"]] == ["running"] and m["attempts"][0]["wall_s"] > 0
    # the same six losses, step for step, and the same weights as the run that was never interrupted
    assert m["metrics"]["losses"] == whole["metrics"]["losses"] and len(m["metrics"]["losses"]) == 6
    assert m["outputs"]["model"]["sha256"] == whole["outputs"]["model"]["sha256"]
    assert not list((sft_dir / "train").glob("checkpoint-*"))  # retention: none kept by default
    assert not (sft_dir / ".partial").exists()


def test_make_report_on_the_smoke_run_opens_offline_and_its_medqa_cell_shows_the_logged_samples(chain, tmp_path):
    from playwright.sync_api import sync_playwright

    from scripts.lib.report import browser

    _, run, _ = chain
    run_py("scripts.drivers.report", "--run", run, "--out", tmp_path / "report.html")  # what `make report` runs
    (samples,) = (run / "eval-mcqa" / "lm_eval").rglob("samples_aloe_local_medqa_4options_*.jsonl")
    logged = [
        [str(s["doc_id"]), "1" if s["acc"] == 1.0 else "0"] for s in map(json.loads, samples.read_text().splitlines())
    ]
    problems = []
    with sync_playwright() as p:
        chromium = browser.launch(p)
        pg = chromium.new_page()
        pg.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: problems.append(str(e)))
        browser.offline(pg)
        pg.goto((tmp_path / "report.html").as_uri())
        hrefs = pg.eval_on_selector_all('a[href^="#"]', "links => links.map(a => a.getAttribute('href'))")
        missing = pg.evaluate("hrefs => hrefs.filter(h => !document.getElementById(h.slice(1)))", hrefs)
        pg.click('#table-verify tr[data-task="medqa_4options"] a.drill')
        shown = pg.eval_on_selector_all(
            "#samples-medqa_4options-rows > tbody > tr",
            "rows => rows.filter(r => r.checkVisibility()).map(r => [r.dataset.docId, r.dataset.correct])",
        )
        chromium.close()
    assert problems == [] and len(hrefs) > 50 and missing == []
    assert shown == logged and len(logged) == 40  # the smoke run's 40 MedQA fixture questions, as lm-eval logged them


def test_tracker_tensorboard_logs_sft_and_every_dpo_run_in_the_tools_own_event_files(chain):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, run, _ = chain  # the chain fixture runs with TRACKER=tensorboard

    def scalars(folder, tag):
        (events,) = folder.glob("*/events.out.tfevents.*")
        acc = EventAccumulator(str(events))
        acc.Reload()
        return [round(e.value, 4) for e in acc.Scalars(tag)]

    sft = mf.read(run / "sft")
    assert scalars(run / "sft" / "train" / "runs", "train/loss") == [round(x, 4) for x in sft["metrics"]["losses"]]
    for d in sorted((run / "dpo").glob("0*")):
        losses = scalars(d / "tensorboard", "train/loss_mean")
        assert len(losses) == 4, d.name  # one point per optimiser step: 16 pairs / batch 4
    assert sft["recipe"]["rendered"].get("use_tensorboard") is None  # how it was watched is not its identity
    # the report's curves come from those event files
    from scripts.lib.openrlhf_log import STEP
    from scripts.lib.report import collect

    curves = collect.curve_data(run, collect.manifests(run), STEP)
    assert curves["sft"]["source"] == "TensorBoard event files"
    assert [round(v, 4) for _, v in curves["sft"]["loss"]] == [round(x, 4) for x in sft["metrics"]["losses"]]
    assert [c["source"] for _, c in curves["dpo"]] == ["TensorBoard event files"] * 6


def test_dpo_killed_inside_its_third_run_resumes_at_its_checkpoint_with_every_pair_counted_once(chain):
    runs, run, _ = chain
    third = run / "dpo" / "03-stage1-2"
    whole = mf.read(third)
    shutil.rmtree(third)  # as if the chain had been preempted inside its third run: runs 1 and 2 are done
    args = ["scripts.dpo", "--profile", "cpu-tiny", "--runs", runs, "--upto", "3"]
    tracked = {"ALOE_MAKE_TRACKER": "tensorboard"}  # as the chain ran it: the run's curves stay event files
    proc = subprocess.Popen(
        [sys.executable, "-m", *map(str, args)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, env={**os.environ, **tracked},
    )  # fmt: skip
    latest, deadline = third / ".partial" / "ckpt" / "latest", time.time() + 600
    while time.time() < deadline and proc.poll() is None and not latest.exists():
        time.sleep(0.05)
    assert proc.poll() is None, "the third run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # after its checkpoint at step 2 of 4 (cpu-tiny: ckpt.save_steps 2)
    proc.wait()
    assert latest.read_text().strip() == "global_step2"
    p = run_py(*args, env=tracked)
    assert p.stdout.count("[dpo-run] skipped") == 2 and "resuming the unfinished attempt (running)" in p.stdout
    m = mf.read(third)
    pairs = len(Path(m["inputs"]["data"]["path"]).read_text().splitlines())
    assert m["metrics"]["resumed_from_step"] == 2 and m["metrics"]["resumed_from_pairs"] == 8
    assert whole["metrics"]["resumed_from_pairs"] is None
    assert m["metrics"]["pairs_trained"] == whole["metrics"]["pairs_trained"] == pairs == 16  # none skipped or twice
    assert "Loaded the checkpoint" in (third / "log.txt").read_text(errors="replace")
    assert [a["status"] for a in m["attempts"]] == ["running"]
    assert m["outputs"]["model"]["sha256"] == whole["outputs"]["model"]["sha256"]  # as if never interrupted
    assert not (third / ".partial").exists()  # the checkpoints went with the finished run


def test_a_dpo_run_preempted_on_two_ranks_resumes_on_one_through_a_universal_checkpoint(chain, tmp_path):
    runs, run, _ = chain
    name = run.name
    (tmp_path / name).mkdir()  # a private copy of the chain's kit, data and merge: the shared outputs stay intact
    for src, dest in ((runs / "tiny-kit", tmp_path / "tiny-kit"), (run / "data", tmp_path / name / "data"),
                      (run / "merge", tmp_path / name / "merge")):  # fmt: skip
        subprocess.run(["cp", "-r", src, dest], check=True)
    args = ["scripts.dpo", "--profile", "cpu-tiny", "--runs", tmp_path, "--upto", "1", "--world-size"]
    first = tmp_path / name / "dpo" / "01-stage1-0"
    proc = subprocess.Popen([sys.executable, "-m", *map(str, args), "2"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    latest, deadline = first / ".partial" / "ckpt" / "latest", time.time() + 600
    while time.time() < deadline and proc.poll() is None and not latest.exists():
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # preempted on 2 ranks after its step-2 checkpoint (ZeRO-3: a file per rank)
    proc.wait()
    p = run_py(*args, "1")  # the same total batch of 4 on one rank: micro 1 x accumulation 4
    assert "made on another layout (1 x 2 x 2 -> 1 x 4 x 1)" in p.stdout and "universal checkpoint" in p.stdout
    m = mf.read(first)
    assert (m["world_size"], m["grad_accum"]) == (1, 4) and [
        (a["world_size"], a["grad_accum"]) for a in m["attempts"]
    ] == [(2, 2)]
    assert m["metrics"]["resumed_from_world_size"] == 2 and m["metrics"]["resumed_from_pairs"] == 8
    assert m["metrics"]["pairs_trained"] == 16  # 8 consumed on two ranks, the other 8 on one: each pair once
    p = run_py(*args, "2")  # the finished run is kept on the old layout: not trained again
    assert "[dpo-run] skipped: finished with the same inputs, on another layout (1 x 4 x 1)" in p.stdout


def test_smoke_summary_shows_the_manifests_numbers(chain):
    _, run, out = chain
    rows = {line.split("|")[0].strip(): line for line in out[out.index("smoke summary") :].splitlines() if "|" in line}
    sft = mf.read(run / "sft")["metrics"]
    assert f"loss {sft['loss_first']:.4f} -> {sft['loss_last']:.4f} ({sft['steps']} steps)" in rows["sft"]
    margins = [f"{r['reward_margin_last']:+.2e}" for r in mf.read(run / "dpo")["runs"]]
    assert f"6 runs; reward margin at the end of each: {', '.join(margins)}" in rows["dpo"]
    mp = mf.read(run / "medprompt-medqa_4options")["metrics"]
    assert f"acc {mp['accuracy']:.3f}, parse rate {mp['parse_rate']:.2f}" in rows["medprompt"]


@pytest.mark.parametrize("stage", ["sft", "merge", "dpo"])
def test_manifest_records_the_run(chain, stage):
    _, run, _ = chain
    m = mf.read(run / stage)
    assert m["schema"] == mf.SCHEMA and m["status"] == "done" and m["recipe"]["sha256"]
    assert m["tools"] and m["git_sha"] and m["wall_s"] is not None and m["world_size"] == 1
    for name, v in m["inputs"].items():  # every local input is recorded with the hash of what the stage read
        if Path(v["path"]).exists():
            assert v["sha256"] == core.sha256_path(v["path"]), (stage, name)
    assert any(Path(v["path"]).exists() for v in m["inputs"].values())
