"""A chain's jobs on this machine (make smoke, make reproduce LAUNCHER=local), several at once.

A job starts once every job it waits for (`after`) ended with exit 0, at most `slots` at once, ties in chain order;
after a failure no job starts and the running ones finish (their results are kept). Each job's whole output goes to
<run>/logs/<job>.log; the console gets one line per start and end, a "still running" line at most every
HEARTBEAT_S, the end of a failed job's log, and with `verbose` every job's output too, each line prefixed with its
job's name.

The logs are not kept in the stage folders: the tiny kit's folder is shared by every run of a runs root (the 8B and
Qwen chains run side by side in `make test`), the six DPO jobs share one folder and the preflight job has none.
"""

import argparse
import os
import re
import shlex
import subprocess
import threading
import time
from pathlib import Path

from scripts import core

from . import cli

LOG_FOLDER = "{run}/logs"  # under the runs root: <job>.log, rewritten each time the job runs
MAX_SLOTS = 2  # [C] the default is the machine's cores, at most this many (both cores of the 2-core machine)
HEARTBEAT_S = 30  # at most one "still running" line this often
TAIL = 40  # lines of a failed job's log shown on the console
# a build skipped and none made or resumed (scripts/lib/manifest.py Build prints these): a DPO job that runs the
# plan up to its N-th run skips when all N skip
SKIPPED = re.compile(r"^\[[\w.-]+\] skipped: ", re.M)
BUILT = re.compile(r"^\[[\w.-]+\] (building|resuming) ", re.M)
_console = threading.Lock()  # one line at a time from the job threads (verbose) and the scheduler


def default_slots() -> int:
    return max(1, min(os.cpu_count() or 1, MAX_SLOTS))


def options(ap: argparse.ArgumentParser):
    """--jobs and --verbose (make JOBS= VERBOSE=1) of the drivers that run a chain here."""
    ap.add_argument("--jobs", type=cli.positive, help=f"jobs at once (default: the cores, at most {MAX_SLOTS})")
    ap.add_argument("--verbose", action="store_true", help="every job's output on the console too, not only its log")


def run(jobs: list, logs: Path, slots: int | None = None, verbose=False, heartbeat=HEARTBEAT_S) -> list:
    """Run the jobs (in chain order; each with `name`, `after` and `argv()`); returns [(job, seconds, exit code)] of
    every job that ran, in chain order. A name in `after` that is not one of `jobs` was done before."""
    slots = slots or default_slots()
    logs = Path(logs)
    logs.mkdir(parents=True, exist_ok=True)
    names, say = {j.name for j in jobs}, _clock(time.time())
    waiting, running, ended = list(jobs), {}, {}  # running: name -> (job, Popen, start, log, its file, tee thread)

    def ready(job):  # every job it waits for ended with exit 0
        return all(a not in names or ended.get(a, (0, None))[1] == 0 for a in job.after)

    print(f"{len(jobs)} job(s), up to {slots} at once; each job's output in {_shown(logs)}/<job>.log"
          + ("" if verbose else " (VERBOSE=1 shows it on the console too)"), flush=True)  # fmt: skip
    last = time.time()  # of the last progress line
    try:
        while True:
            failed = any(code for _, code in ended.values())
            for job in [j for j in waiting if ready(j)] if not failed else []:
                if len(running) == slots:
                    break
                waiting.remove(job)
                running[job.name] = _start(job, log_file(logs, job), verbose)
                say(f"start  {job.name}")
                last = time.time()
            if not running:  # nothing runs and nothing could start: no job ended since
                break
            time.sleep(0.1)
            for name, (job, proc, start, log, fh, tee) in list(running.items()):
                if proc.poll() is None:
                    continue
                if tee:
                    tee.join()
                fh.close()
                del running[name]
                ended[name] = (time.time() - start, proc.returncode)
                _ended(say, job, ended[name], log)
                last = time.time()
            if running and time.time() - last >= heartbeat:
                now = last = time.time()
                say("still running: " + ", ".join(f"{n} ({now - r[2]:.0f} s)" for n, r in running.items()))
    finally:
        for _, proc, *_ in running.values():  # interrupted: the jobs still running stop with it
            proc.terminate()
            proc.wait()
    failures = [f"{n} (exit {c})" for n, (_, c) in ended.items() if c]
    if failures:
        print(f"failed: {', '.join(failures)}; not started: {', '.join(j.name for j in waiting) or 'none'}",
              flush=True)  # fmt: skip
    return [(j, *ended[j.name]) for j in jobs if j.name in ended]


def log_file(logs: Path, job) -> Path:
    return Path(logs) / f"{job.name}.log"


def output(logs: Path, job) -> str:
    """What the job printed (its log, without the command line it starts with)."""
    return log_file(logs, job).read_text(errors="replace").split("\n", 1)[-1]


def _start(job, log: Path, verbose: bool) -> tuple:
    fh = open(log, "wb")
    fh.write(f"$ {shlex.join(map(str, job.argv()))}".replace("\n", "\\n").encode() + b"\n")  # on one line
    fh.flush()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # the log shows progress while the job runs
    out = subprocess.PIPE if verbose else fh
    proc = subprocess.Popen(job.argv(), cwd=core.ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
    tee = threading.Thread(target=_tee, args=(proc, fh, job.name), daemon=True) if verbose else None
    if tee:
        tee.start()
    return job, proc, time.time(), log, fh, tee


def _tee(proc, fh, name: str):
    for line in iter(proc.stdout.readline, b""):
        fh.write(line)
        fh.flush()
        with _console:
            print(f"{name} | {line.decode(errors='replace').rstrip()}", flush=True)


def _ended(say, job, result: tuple, log: Path):
    seconds, code = result
    text = log.read_text(errors="replace")
    skipped = not code and SKIPPED.search(text) and not BUILT.search(text)
    say(f"end    {job.name}  {seconds:.0f} s  exit {code}" + (", skipped" if skipped else ""))
    if code:
        tail = text.splitlines()[-TAIL:]
        with _console:
            print(f"--- {job.name} failed: the last {len(tail)} lines of {_shown(log)} ---", *tail, "---",
                  sep="\n", flush=True)  # fmt: skip


def _clock(t0: float):
    def say(text: str):
        s = int(time.time() - t0)
        with _console:
            print(f"[{s // 60:3d}:{s % 60:02d}] {text}", flush=True)

    return say


def _shown(path: Path) -> Path:
    return path.relative_to(core.ROOT) if path.is_relative_to(core.ROOT) else path
