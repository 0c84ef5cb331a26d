"""`make reproduce-*` without a cluster: the dry run prints the paper's layout with the published effective
batches, bad layouts and cluster settings are refused before anything is submitted, and the local
launcher resumes a finished chain without rerunning a stage."""

import json
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_py

from scripts.core import AloeError
from scripts.lib import chain as ch
from scripts.lib import recipe as rc
from scripts.lib import slurm, yamlfiles

EXAMPLE = ROOT / "recipes" / "clusters" / "example.yaml"
# the dry runs' folder, one per pytest-xdist worker: a parallel dry run does not rewrite the plans another reads
DRY = ROOT / "runs" / "-".join(["test-dry", *filter(None, [os.environ.get("PYTEST_XDIST_WORKER")])])


def dry_run(recipe, *extra, check=True):
    return run_py(
        "scripts.drivers.reproduce",
        "--recipe",
        recipe,
        "--cluster",
        EXAMPLE,
        "--dry-run",
        "--runs",
        DRY,
        *extra,
        check=check,
    )


def graph_table(out):
    """{job: {column: cell}} of the printed job graph."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) == len(slurm.GRAPH) and cells[0] not in ("job", ""):
            rows[cells[0]] = dict(zip(slurm.GRAPH, cells))
    return rows


def graph_rows(out):
    """{job: (nodes x gpus, batch, after)} from the printed job graph."""
    return {
        k: (v["nodes x gpus"], v["batch (micro x accum x ranks) / parallel"], v["after"])
        for k, v in graph_table(out).items()
        if k != "all"
    }


@pytest.mark.parametrize(
    "recipe,sft,dpo,sft_batch,dpo_batch",
    [
        ("recipes/aloe-beta-8b", "8 x 4", "4 x 4", "1 x 4 x 32 = 128", "1 x 8 x 16 = 128"),
        ("recipes/aloe-beta-70b", "16 x 4", "25 x 4", "1 x 2 x 64 = 128", "1 x 1 x 100 = 100"),
    ],
)
@pytest.mark.unit
def test_dry_run_prints_the_papers_layout_and_submits_nothing(recipe, sft, dpo, sft_batch, dpo_batch):
    out = dry_run(recipe).stdout
    rows = graph_rows(out)
    assert list(rows)[:4] == ["preflight", "data", "sft", "merge"]
    # the preflight first, on the largest job's nodes and ranks; the job that would start first waits for it
    ranks = lambda shape: int(shape.split(" x ")[0]) * int(shape.split(" x ")[1])  # noqa: E731
    assert rows["preflight"][0] == max(sft, dpo, key=ranks) and rows["preflight"][2] == "-"
    assert rows["data"][2] == "preflight"
    pre = out[out.index("01-preflight.sbatch") : out.index("02-data.sbatch")]
    assert "#SBATCH --time=00:20:00" in pre and "--requeue" not in pre and "trap requeue" not in pre
    assert f"scripts.drivers.preflight --world {ranks(max(sft, dpo, key=ranks))} --plans" in pre
    assert [j for j in rows if j.startswith("dpo")] == [f"dpo-stage1-{i}" for i in range(1, 6)] + ["dpo-stage2-1"]
    assert rows["sft"][:2] == (sft, sft_batch) and rows["sft"][2] == "data"
    for i in range(1, 6):
        assert rows[f"dpo-stage1-{i}"][:2] == (dpo, dpo_batch)
    assert rows["dpo-stage1-1"][2] == "merge" and rows["dpo-stage2-1"][2] == "dpo-stage1-5"
    assert rows["eval"][2] == "dpo-stage2-1" and rows["verify"][2] == "eval"
    nodes = sft.split()[0]
    assert re.search(rf"#SBATCH --nodes={nodes}\n", out) and "#SBATCH --gres=gpu:4" in out
    assert out.count("--dependency=afterok:") == len(rows) - 1 and "--kill-on-invalid-dep=yes" in out
    assert "nothing submitted" in out and not list(DRY.glob("*/slurm"))


@pytest.mark.parametrize("suite", ["openmedqa", "fields"])
@pytest.mark.unit
def test_a_suite_that_reads_the_mcqa_eval_gets_an_mcqa_eval_job_before_it(suite):
    rows = graph_rows(dry_run("recipes/aloe-beta-8b", "--suite", suite).stdout)
    assert rows["eval-mcqa"][2] == "dpo-stage2-1" and rows["eval"][2] == "eval-mcqa" and rows["verify"][2] == "eval"
    plans = DRY / "aloe-beta-8b" / "plan" / "dry-run"
    mcqa, judged = (json.loads((plans / f"{j}.json").read_text())["job"] for j in ("eval-mcqa", "eval"))
    assert (mcqa["stage"], mcqa["args"][:2], Path(mcqa["folder"]).name) == ("eval", ["--suite", "mcqa"], "eval-mcqa")
    assert (judged["stage"], Path(judged["folder"]).name) == (suite, f"eval-{suite}")
    assert "eval-mcqa" not in graph_rows(dry_run("recipes/aloe-beta-8b").stdout)


@pytest.mark.unit
def test_a_layout_derives_grad_accum_or_is_refused_before_submitting():
    rows = graph_rows(dry_run("recipes/aloe-beta-8b", "--layout", "sft=4x4,dpo=2x4").stdout)
    assert rows["sft"][:2] == ("4 x 4", "1 x 8 x 16 = 128") and rows["dpo-stage1-1"][:2] == (
        "2 x 4",
        "1 x 16 x 8 = 128",
    )
    p = dry_run("recipes/aloe-beta-70b", "--layout", "dpo=4x4", check=False)  # 100 pairs on 16 GPUs
    assert p.returncode and "layout refused" in p.stderr and "train.batch_size" in p.stderr
    assert "1, 2, 4, 5, 10, 20, 25, 50, 100" in p.stderr and "#SBATCH" not in p.stdout
    p = dry_run("recipes/aloe-beta-8b", "--layout", "sft=4x8", check=False)  # 8 GPUs on a 4-GPU node
    assert p.returncode and "8 GPUs per node, the cluster has 4" in p.stderr
    p = dry_run("recipes/aloe-beta-8b", "--layout", "sfft=4x4", check=False)
    assert p.returncode and "no stage 'sfft'" in p.stderr


@pytest.mark.unit
def test_cluster_settings_refuse_unknown_keys_and_take_the_environment(tmp_path, monkeypatch):
    bad = tmp_path / "c.yaml"
    bad.write_text("partition: gpu\npartiton: gpu\n")
    with pytest.raises(yamlfiles.RecipeError) as e:
        slurm.load_settings(bad)
    assert "c.yaml:2: partiton: unknown key (did you mean 'partition'?)" in str(e.value)
    monkeypatch.setenv("ALOE_SLURM_ACCOUNT", "bsc70")
    monkeypatch.setenv("ALOE_SLURM_CONTAINER", "apptainer exec --nv aloe.sif")
    s = slurm.load_settings(EXAMPLE)
    r = rc.load(ROOT / "recipes" / "aloe-beta-8b")
    sft = next(j for j in ch.build(r, "/runs") if j.name == "sft")
    text = slurm.script(sft, s, tmp_path, "python")
    assert "#SBATCH --account=bsc70" in text and "#SBATCH --nodes=8" in text
    assert "apptainer exec --nv aloe.sif python -m scripts.sft --plan /runs/aloe-beta-8b/plan/sft.json" in text
    assert sft.rendered["hardware"]["sft"]["gpus"] == 32 and not sft.plan.exists()  # build renders, writes nothing
    assert "#SBATCH --time=1-01:43:00" in text  # 17.14 h published x 1.5


@pytest.mark.unit
@pytest.mark.parametrize("restarts, requeued", [(0, True), (2, True), (3, False)])
def test_the_time_limit_warning_requeues_the_job_a_bounded_number_of_times(tmp_path, restarts, requeued):
    s = slurm.load_settings(EXAMPLE)
    sft = next(j for j in ch.build(rc.load(ROOT / "recipes" / "aloe-beta-8b"), "/runs") if j.name == "sft")
    text = slurm.script(sft, s, tmp_path, "python")
    assert "#SBATCH --requeue\n#SBATCH --signal=B:USR1@900\n" in text
    bin_dir = tmp_path / "bin"  # a stand-in scontrol, and a stage that saves and stops when asked (or after 3 s)
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(
        f'#!/bin/sh\n[ -e {tmp_path}/save-request-42 ] && echo early; echo "$@" >> {tmp_path}/scontrol.log\n'
    )
    (bin_dir / "scontrol").chmod(0o755)
    stage = (
        'for i in $(seq 30); do [ -e "$ALOE_SAVE_REQUEST" ] && { echo "stage saved"; exit 7; }; sleep 0.1; done; exit 7'
    )
    job = tmp_path / "job.sh"
    job.write_text(re.sub(r"(?m)^python -m scripts\.sft .* &$", f"sh -c {shlex.quote(stage)} &", text))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SLURM_JOB_ID": "42", "SLURM_JOB_NAME": "aloe-sft",
           "SLURM_RESTART_COUNT": str(restarts)}  # fmt: skip
    proc = subprocess.Popen(["bash", job], env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    proc.send_signal(signal.SIGUSR1)  # Slurm's warning, --signal=B:USR1@900
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 7  # the stage's own status, after the trap ran
    assert ((tmp_path / "scontrol.log").read_text() if requeued else "") == ("requeue 42\n" if requeued else "")
    assert (f"requeued (restart {restarts + 1} of 3)" if requeued else "requeued 3 times already") in out
    # asked to save first, requeued only once the stage had stopped, the request gone before the job comes back
    assert ("stage saved" in out) == requeued and "early" not in out and not (tmp_path / "save-request-42").exists()
    s["max_requeues"] = 0
    assert "--requeue" not in slurm.script(sft, s, tmp_path, "python")


@pytest.mark.unit
def test_a_job_slurm_forgot_after_it_ended_keeps_its_last_state(monkeypatch, capsys):
    # scontrol answers nothing for a job once MinJobAge has passed since it ended
    polls = {
        "a": [{"JobState": "RUNNING"}, {"JobState": "COMPLETED"}, {}, {}],
        "b": [{"JobState": "PENDING"}, {"JobState": "RUNNING"}, {}, {}],
    }
    monkeypatch.setattr(slurm, "job_state", lambda jid: polls[jid].pop(0))
    states = slurm.wait({"a": "a", "b": "b"}, poll=0)
    assert states["a"]["JobState"] == "COMPLETED"
    assert states["b"]["JobState"] == "UNKNOWN"  # vanished while running: never counted as finished
    assert "[slurm] b (b): UNKNOWN (no longer known to slurm)" in capsys.readouterr().out


@pytest.mark.chain
def test_dpo_upto_outside_the_plan_is_refused(chain):
    runs, _, _ = chain
    p = run_py("scripts.dpo", "--profile", "cpu-tiny", "--runs", runs, "--upto", "7", check=False)
    assert p.returncode and "--upto 7: the plan of recipes/aloe-beta-8b/dpo.yaml has runs 1 to 6" in p.stderr


@pytest.mark.chain
def test_the_local_launcher_resumes_a_finished_chain_without_rerunning_a_stage(chain):
    runs, _, _ = chain
    p = run_py(
        "scripts.drivers.reproduce", "--profile", "cpu-tiny", "--fixtures", "--launcher", "local", "--runs", runs
    )
    done = re.search(r"already done \(same inputs\), not resubmitted: (.*)", p.stdout).group(1).split(", ")
    assert done == [
        "tiny-kit",
        "data",
        "sft",
        "merge",
        *(f"dpo-stage1-{i}" for i in range(1, 6)),
        "dpo-stage2-1",
        "medprompt-medqa_4options",
        "eval",
    ]
    started = re.findall(r"^\[ *\d+:\d\d\] start +(\S+)$", p.stdout, re.M)  # scripts/lib/local_jobs.py
    assert started == ["preflight", "verify"] and "=== verify ===" in p.stdout  # verify's report on the console
    # the preflight ran first, on this machine: the plans, every environment against its lock, a 1-rank all-reduce
    log = (runs / "aloe-beta-8b-cpu-tiny" / "logs" / "preflight.log").read_text()
    assert '"preflight": "ok"' in log and "[preflight] .venv/dpo: matches dpo.lock" in log
    assert '"backend": "gloo", "world_size": 1' in log


@pytest.mark.unit
def test_ranks_start_through_srun_and_torchrun_inside_a_multi_node_job(monkeypatch):
    from scripts.lib import launch

    target = ["-m", "openrlhf.cli.train_dpo", "--x"]
    assert launch.on_ranks("torchrun", target, 1) == target
    assert launch.on_ranks("torchrun", target, 4)[:3] == ["torchrun", "--standalone", "--nproc_per_node=4"]
    monkeypatch.setenv("SLURM_JOB_ID", "1234")
    monkeypatch.setenv("SLURM_JOB_NUM_NODES", "2")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "gpu[07-08]")
    monkeypatch.setattr(launch, "master_addr", lambda nodes: {"gpu[07-08]": "gpu07"}[nodes])
    cmd = launch.on_ranks("torchrun", target, 8)
    assert cmd[:5] == ["srun", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    assert cmd[5:8] == ["torchrun", "--nnodes=2", "--nproc_per_node=4"] and cmd[-3:] == target
    assert "--rdzv_endpoint=gpu07:21234" in cmd and "--rdzv_id=1234" in cmd
    assert launch.where() == {
        "kind": "slurm",
        "job_id": "1234",
        "job_name": None,
        "nodes": 2,
        "node_list": "gpu[07-08]",
    }
    with pytest.raises(AloeError, match="7 ranks cannot be spread evenly over the 2 nodes"):
        launch.on_ranks("torchrun", target, 7)


@pytest.mark.unit
def test_dry_run_prints_gpu_hours_energy_and_co2_as_the_paper_does():
    rows = graph_table(dry_run("recipes/aloe-beta-8b").stdout)
    num = {
        k: [float(v[c].replace(",", "")) if v[c] != "-" else None for c in ("GPU-h", "kWh", "CO2 kg")]
        for k, v in rows.items()
    }
    assert num["sft"][0] == 548.48 and num["sft"][2] == 61.42  # P-BETA Table 5, 8B
    dpo1 = [num[f"dpo-stage1-{i}"] for i in range(1, 6)]
    assert abs(sum(x[0] for x in dpo1) - 97.44) < 0.02 and num["dpo-stage2-1"][0] == 8.96  # Tables 6-8, rounded
    assert abs(sum(x[2] for x in dpo1) + num["dpo-stage2-1"][2] - 11.91) < 0.02  # DPO CO2, 8B
    assert num["eval"] == [None, None, None] and num["all"][0] == 654.88
    other = graph_table(dry_run("recipes/aloe-beta-8b", "--layout", "sft=4x4").stdout)
    assert other["sft"]["GPU-h"] == "548.48"  # ideal scaling: the same GPU-hours,
    assert other["sft"]["time limit"] != rows["sft"]["time limit"]  # on half the GPUs, twice the wall time
