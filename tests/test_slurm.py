"""The tiny chain through a real 2-node Slurm cluster started on this machine (scripts/slurm_local.sh):
every stage is a Slurm job (checked in its manifest), the DPO runs are 2-node jobs of 2 ranks per node
(gloo), a failed stage cancels everything after it, and resubmitting resumes from that stage; an SFT job
requeued with `scontrol requeue` resumes from its checkpoint, and one sent its time-limit warning saves, requeues
itself and resumes from what it saved.

Needs root (the cluster's daemons); skipped otherwise, unless ALOE_REQUIRE_SLURM=1 (CI), which makes a
cluster that cannot start a failure."""

import json
import os
import re
import shutil
import subprocess
import time

import pytest
from conftest import ROOT, run_py, tool

from scripts.lib import chain, cli, slurm, venv
from scripts.lib import manifest as mf

pytestmark = pytest.mark.slurm

RUNS = ROOT / "runs" / "test-slurm"
RUN = RUNS / "aloe-beta-8b-cpu-tiny-2node"
CLUSTER = ROOT / "recipes" / "clusters" / "local.yaml"


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0 and not os.environ.get("ALOE_REQUIRE_SLURM"):
        pytest.skip("the local Slurm cluster needs root")
    script = ROOT / "scripts" / "slurm_local.sh"
    subprocess.run([script, "start", "2"], check=True, timeout=600)
    yield
    subprocess.run([script, "stop"], check=True, timeout=120)
    assert not shutil.which("squeue") or subprocess.run(["pgrep", "-x", "slurmctld"]).returncode != 0


def reproduce(*extra, check=True):
    return run_py(
        "scripts.drivers.reproduce",
        "--profile",
        "cpu-tiny-2node",
        "--fixtures",
        "--launcher",
        "slurm",
        "--cluster",
        CLUSTER,
        "--runs",
        RUNS,
        "--wait",
        *extra,
        check=check,
        timeout=2400,
    )


def submitted():
    """The job ids of the latest submission."""
    return json.loads(sorted((RUN / "slurm").glob("submitted-*.json"))[-1].read_text())["jobs"]


def manifests():
    out = {"tiny-kit": mf.read(RUNS / "tiny-kit")}
    for d in sorted(RUN.iterdir()):
        if (d / "manifest.json").exists():
            out[d.name] = mf.read(d)
    for d in sorted((RUN / "dpo").glob("0*")):
        out[f"dpo/{d.name}"] = mf.read(d)
    return out


@pytest.fixture(scope="module")
def slurm_chain(cluster):
    shutil.rmtree(RUNS, ignore_errors=True)
    p = reproduce(check=False)
    print(p.stdout[-5000:])
    assert p.returncode == 0, p.stdout[-6000:] + p.stderr[-3000:]
    return p.stdout


def test_every_stage_ran_as_a_slurm_job(slurm_chain):
    ids = submitted()
    assert len(ids) == 14 and list(ids)[0] == "preflight"  # then tiny-kit data sft merge dpo x6 medprompt eval verify
    ms = manifests()
    assert {"tiny-kit", "data", "sft", "merge", "dpo", "eval-mcqa", "medprompt-medqa_4options"} <= set(ms)
    assert len([k for k in ms if k.startswith("dpo/")]) == 6
    for name, m in ms.items():
        assert m["status"] == "done", name
        assert m["launcher"]["kind"] == "slurm", f"{name} ran outside Slurm: {m['launcher']}"
        assert m["launcher"]["job_id"] in ids.values(), name
    assert "COMPLETED" in slurm_chain and (RUN / "verify" / "report.md").exists()


def test_dpo_runs_are_two_node_jobs_of_two_ranks_per_node(slurm_chain):
    ms = manifests()
    for name in (k for k in ms if k.startswith("dpo/")):
        m = ms[name]
        assert m["launcher"]["nodes"] == 2 and m["world_size"] == 4 and m["grad_accum"] == 1, name
        assert m["micro_batch"] * m["grad_accum"] * m["world_size"] == m["total_batch"] == 4
        log = (RUN / name / "log.txt").read_text()
        ranks = re.findall(r"\[openrlhf_cpu\] rank (\d) of 4 \(local (\d)\) on node (n\d)", log)
        assert sorted(r for r, _, _ in ranks) == ["0", "1", "2", "3"], (
            name
        )  # which node gets ranks 0-1: rendezvous order
        assert sorted((node, local) for _, local, node in ranks) == [("n1", "0"), ("n1", "1"), ("n2", "0"), ("n2", "1")]
    last, merged = ms["dpo"]["outputs"]["model"]["path"], ms["merge"]["outputs"]["model"]["path"]
    res = tool("eval", "check_model.py", last, "--ref", merged)
    assert res["tensors_changed"] > 0 and res["max_abs_change"] > 0, "the 2-node DPO left the weights unchanged"


def test_a_failed_stage_cancels_its_dependants_and_a_resubmission_resumes_there(slurm_chain):
    # make the red-team DPO run fail: a file where its run directory must go
    shutil.rmtree(RUN / "dpo" / "06-stage2-0")
    (RUN / "dpo" / "manifest.json").unlink()
    (RUN / "dpo" / "06-stage2-0").write_text("in the way")
    p = reproduce(check=False)
    assert p.returncode == 1
    ids = submitted()
    assert list(ids) == ["preflight", "dpo-stage2-1", "medprompt-medqa_4options", "eval", "verify"]
    states = dict(re.findall(r"^(\S+)\s+\|\s+\d+\s+\|\s+([A-Z_]+)", p.stdout, re.M))
    assert states["preflight"] == "COMPLETED" and states["dpo-stage2-1"] == "FAILED"
    assert all(states[j] == "CANCELLED" for j in ("medprompt-medqa_4options", "eval", "verify")), states
    assert "DependencyNeverSatisfied" in p.stdout
    assert subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip() == ""  # nothing pending

    (RUN / "dpo" / "06-stage2-0").unlink()
    p = reproduce()
    assert re.search(r"not resubmitted: tiny-kit, data, sft, merge, dpo-stage1-1, .*dpo-stage1-5\n", p.stdout)
    assert list(submitted()) == ["preflight", "dpo-stage2-1", "medprompt-medqa_4options", "eval", "verify"]
    assert mf.read(RUN / "dpo")["status"] == "done" and len(mf.read(RUN / "dpo")["runs"]) == 6


def test_the_preflight_job_runs_first_and_a_planted_bad_input_stops_the_chain_before_any_training(slurm_chain):
    sft_manifest, train = RUN / "sft" / "manifest.json", RUN / "data" / "sft.jsonl"
    manifest_bytes, train_bytes = sft_manifest.read_bytes(), train.read_bytes()
    sft_manifest.unlink()  # SFT and everything after it to run again ...
    train.write_bytes(train_bytes + b'{"planted": true}\n')  # ... on data that is not what the data stage recorded
    try:
        p = reproduce(check=False)
    finally:
        sft_manifest.write_bytes(manifest_bytes)
        train.write_bytes(train_bytes)
    assert p.returncode == 1
    ids = submitted()
    assert list(ids)[:2] == ["preflight", "sft"]
    states = dict(re.findall(r"^(\S+)\s+\|\s+\d+\s+\|\s+([A-Z_]+)", p.stdout, re.M))
    assert states["preflight"] == "FAILED" and all(states[j] == "CANCELLED" for j in list(ids)[1:]), states
    log = (RUN / "slurm" / f"{ids['preflight']}-preflight.out").read_text(errors="replace")
    assert f"{train} changed since its stage recorded it" in log and "preflight failed" in log
    assert '"backend": "gloo", "world_size": 4' in log  # every rank of the largest job (DPO: 2 nodes x 2) met
    assert not (RUN / "sft" / ".partial").exists()  # no training job started


def one_sft_job(root):
    """The SFT job of a private copy of the Slurm chain's kit and data (its own runs root), submitted alone:
    (its stage folder, its job id)."""
    (root / RUN.name).mkdir(parents=True)
    subprocess.run(["cp", "-r", RUNS / "tiny-kit", root / "tiny-kit"], check=True)
    subprocess.run(["cp", "-r", RUN / "data", root / RUN.name / "data"], check=True)
    r, runs = cli.load(ROOT / "recipes" / "aloe-beta-8b", "cpu-tiny-2node", runs=root)
    (sft,) = chain.write_plans([j for j in chain.build(r, str(runs), fixtures=True) if j.name == "sft"])
    ids = slurm.submit([sft], slurm.load_settings(CLUSTER), root / "slurm", str(venv.VENVS / "base" / "bin" / "python"))
    return sft.folder, ids


def first_checkpoint(folder, job_id):
    """Wait for the trainer's first complete checkpoint (cpu-tiny: save_steps 2, so step 2 of 6)."""
    deadline = time.time() + 900
    while not list((folder / ".partial" / "model").glob("checkpoint-*/trainer_state.json")):
        assert slurm.job_state(job_id).get("JobState") in slurm.ACTIVE, slurm.job_state(job_id)
        assert time.time() < deadline, "no checkpoint within 900 s"
        time.sleep(0.05)


def released_when_requeued(job_id):
    """Wait for the requeued job to be pending again, then lift the two minutes Slurm holds every requeued job
    back by (`Reason=BeginTime`; on a real cluster that wait is the scheduler's business, here it is idle CI time)."""
    deadline = time.time() + 600
    while (st := slurm.job_state(job_id)).get("Restarts") == "0" or st.get("JobState") != "PENDING":
        assert st.get("JobState") in slurm.ACTIVE and time.time() < deadline, st
        time.sleep(0.2)
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)


def steps(folder):
    return sorted(
        int(d.parent.name.split("-")[1])
        for d in (folder / ".partial" / "model").glob("checkpoint-*/trainer_state.json")
    )


def test_a_requeued_sft_job_resumes_from_its_checkpoint(slurm_chain, tmp_path):
    folder, ids = one_sft_job(tmp_path)
    first_checkpoint(folder, ids["sft"])
    subprocess.run(["scontrol", "requeue", ids["sft"]], check=True)  # as a preemption does
    newest = steps(folder)[-1]
    released_when_requeued(ids["sft"])
    states = slurm.wait(ids)
    assert states["sft"]["JobState"] == "COMPLETED" and states["sft"]["Restarts"] == "1", states
    m = mf.read(folder)
    assert m["launcher"]["job_id"] == ids["sft"] and [a["status"] for a in m["attempts"]] == ["running"]
    assert m["metrics"]["resumed_from_step"] == newest >= 2 and len(m["metrics"]["losses"]) == 6


def test_the_time_limit_warning_makes_the_sft_job_save_then_requeue_and_resume_there(slurm_chain, tmp_path):
    folder, ids = one_sft_job(tmp_path)
    first_checkpoint(folder, ids["sft"])
    subprocess.run(["scancel", "--signal=USR1", "--batch", ids["sft"]], check=True)  # --signal=B:USR1@900, early
    states = slurm.wait(ids)
    assert states["sft"]["JobState"] == "COMPLETED" and states["sft"]["Restarts"] == "1", states
    log = (tmp_path / "slurm" / f"{ids['sft']}-sft.out").read_text(errors="replace")
    asked = re.findall(r"save requested \(.*\): saving at step (\d+) and stopping", log)
    assert "time limit near, saving, then requeued (restart 1 of 3)" in log and len(asked) == 1, log[-3000:]
    m = mf.read(folder)
    assert [a["status"] for a in m["attempts"]] == ["failed"]  # the stage ended on purpose, publishing nothing
    assert m["metrics"]["resumed_from_step"] == int(asked[0]) >= 3 and len(m["metrics"]["losses"]) == 6
    assert not list((tmp_path / "slurm").glob("save-request-*"))
