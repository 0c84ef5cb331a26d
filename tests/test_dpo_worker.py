"""DPO's runs on one CPU rank go to one worker process (scripts/dpo.py's Worker, openrlhf_cpu.py --serve) that runs
them in turn in-process: the same weights and metrics, bit for bit, as one process per run (--separate-processes)."""

import re
import subprocess
import time

import pytest
from conftest import run_py

from scripts import core
from scripts.lib import manifest as mf

pytestmark = pytest.mark.chain

WORKER = re.compile(r"^\[openrlhf_cpu\] worker (\d+): run (\d+) in this process$", re.M)
RUNS = ("01-stage1-0", "02-stage1-1")


def test_two_dpo_runs_in_one_worker_give_the_weights_of_two_separate_processes(chain, tmp_path):
    runs, run, _ = chain
    seen = {}
    for how, extra in (("worker", ()), ("separate", ("--separate-processes",))):
        root = tmp_path / how  # a private copy of the chain's kit, data and merge: the shared outputs stay intact
        (root / run.name).mkdir(parents=True)
        for src, dest in ((runs / "tiny-kit", root / "tiny-kit"), (run / "data", root / run.name / "data"),
                          (run / "merge", root / run.name / "merge")):  # fmt: skip
            subprocess.run(["cp", "-r", src, dest], check=True)
        start = time.time()
        p = run_py("scripts.dpo", "--profile", "cpu-tiny", "--runs", root, "--upto", "2", *extra)
        print(f"runs 1-2, {how}: {time.time() - start:.1f} s")
        assert "[dpo] runs 1-2 of 6 done" in p.stdout
        assert p.stdout.count("[openrlhf_cpu] rank 0 of 1 (local -1)") == 2  # each run's output on the console
        out = []
        for name in RUNS:
            m = mf.read(root / run.name / "dpo" / name)
            model = m["outputs"]["model"]
            assert core.sha256_path(model["path"]) == model["sha256"]
            log = (root / run.name / "dpo" / name / "log.txt").read_text(errors="replace")
            out.append((model["sha256"], m["metrics"], WORKER.findall(log), m["inputs"]["model"]["sha256"]))
        seen[how] = out
    (w1, w2), (s1, s2) = seen["worker"], seen["separate"]
    pid = w1[2][0][0]
    assert (w1[2], w2[2]) == ([(pid, "1")], [(pid, "2")])  # one worker process ran both
    assert (s1[2], s2[2]) == ([], [])  # each run a process of its own
    assert w2[3] == w1[0] != w2[0]  # the second run starts from the first one's output, and trains it
    assert w1[0] == s1[0] and w2[0] == s2[0]  # the same weights, bit for bit
    assert w1[1] == s1[1] and w2[1] == s2[1] and w2[1]["pairs_trained"] == 16  # the same losses, rewards, pairs


def test_the_worker_runs_each_request_with_its_own_env_and_log_and_ends_after_a_failure(tmp_path, capfd):
    from scripts.dpo import Worker
    from scripts.lib import venv

    logs = [tmp_path / f"{i}" / "log.txt" for i in range(4)]
    for log in logs:
        log.parent.mkdir()
        log.write_text("before\n")
    cmd = [venv.TOOLS / "openrlhf_cpu.py", "--module", "calendar"]  # any module, as the shim runs one
    with Worker() as start:
        assert start(cmd + [2026, 1], {"RANK": "0", "WORLD_SIZE": "1"}, logs[0]) == 0
        assert start(cmd + [2026, 2], {}, logs[1]) == 0
        first = start.proc
        assert start(cmd + ["--nope"], {}, logs[2]) == 2  # argparse's SystemExit(2)
        assert start.proc is None and first.returncode is not None  # a failed run ends the worker
        assert start(cmd + [2026, 13], {}, logs[3]) == 1  # a new worker; an exception: status 1, its traceback
    texts = [log.read_text() for log in logs]
    runs = [WORKER.findall(t) for t in texts]
    assert runs[:3] == [[(str(first.pid), n)] for n in "123"]  # one process, its runs counted
    assert len(runs[3]) == 1 and runs[3][0][0] != str(first.pid) and runs[3][0][1] == "1"
    assert all(t.startswith("before\n") for t in texts)  # appended
    assert "January 2026" in texts[0] and "February 2026" in texts[1]
    assert "[openrlhf_cpu] rank 0 of 1" in texts[0] and "[openrlhf_cpu] rank None of None" in texts[1]  # env reset
    assert "unrecognized arguments: --nope" in texts[2] and "IndexError" in texts[3]
    assert capfd.readouterr().out.count("[openrlhf_cpu] worker") == 4  # the tool's output echoed to the console
