"""The local scheduler (scripts/lib/local_jobs.py) on fake jobs, tiny `python -c` processes that record when they
ran: independent jobs overlap, a job waits for its `after`, never more than `slots` at once, a failure starts nothing
new while the running jobs finish, each job's output lands in its own log and the console gets a line per event."""

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from scripts.lib import local_jobs

pytestmark = pytest.mark.unit

# a fake job: records its start and end time in <dir>/<name>.json; between them it waits for the other jobs' starts
# (`meet`), sleeps, prints and exits with its code
BODY = """
import json, sys, time, pathlib
d, name, meet, sleep, text, code = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4]), \\
    sys.argv[5], int(sys.argv[6])
start = time.time()
(d / f"{name}.start").touch()
deadline = start + 20
while any(not (d / f"{o}.start").exists() for o in filter(None, meet.split(","))):
    if time.time() > deadline:
        sys.exit(f"{name}: {meet} never started beside it")
    time.sleep(0.01)
time.sleep(sleep)
print(text)
print(f"{name} to stderr", file=sys.stderr)
(d / f"{name}.json").write_text(json.dumps({"start": start, "end": time.time()}))
sys.exit(code)
"""


@dataclass
class Fake:
    name: str
    dir: Path
    after: list = field(default_factory=list)
    meet: tuple = ()  # jobs whose start it waits for: it cannot end unless they run beside it
    sleep: float = 0.0
    text: str = ""
    code: int = 0
    stage: str = "sft"

    def argv(self):
        args = [self.dir, self.name, ",".join(self.meet), self.sleep, self.text or f"hello from {self.name}", self.code]
        return [sys.executable, "-c", BODY, *map(str, args)]


def times(d: Path, name: str) -> dict:
    return json.loads((d / f"{name}.json").read_text())


def run(tmp_path, jobs, **kw):
    return [(j.name, code) for j, _, code in local_jobs.run(jobs, tmp_path / "logs", **kw)]


def lines(out: str, kind: str, name: str) -> list:
    return re.findall(rf"^\[ *\d+:\d\d\] {kind} +{re.escape(name)}(?: .*)?$", out, re.M)


def test_independent_jobs_run_side_by_side_and_a_dependant_starts_after_both_ended(tmp_path, capsys):
    a, b = (Fake(n, tmp_path, meet=(o,), sleep=0.3) for n, o in ("ab", "ba"))  # each ends only if the other ran too
    c = Fake("c", tmp_path, after=["a", "b"])  # a slot is free for it: only `after` holds it back
    assert run(tmp_path, [a, b, c], slots=3) == [("a", 0), ("b", 0), ("c", 0)]
    ta, tb, tc = (times(tmp_path, n) for n in "abc")
    assert ta["start"] < tb["end"] and tb["start"] < ta["end"]  # their runs overlap
    assert tc["start"] > max(ta["end"], tb["end"])
    out = capsys.readouterr().out
    for name in "abc":  # one start and one end line per job on the console, its output only in its log
        assert len(lines(out, "start", name)) == 1 and len(lines(out, "end", name)) == 1, out
        assert f"hello from {name}" not in out
        log = (tmp_path / "logs" / f"{name}.log").read_text()
        assert f"hello from {name}\n" in log and f"{name} to stderr\n" in log
        assert not {f"hello from {o}" for o in "abc" if o != name} & set(log.splitlines())
    assert re.search(r"^\[ *\d+:\d\d\] end +c +\d+ s +exit 0$", out, re.M), out


@pytest.mark.parametrize("slots", [1, 2])
def test_never_more_than_slots_jobs_at_once(tmp_path, slots):
    jobs = [Fake(n, tmp_path, sleep=0.5) for n in "abcd"]
    assert run(tmp_path, jobs, slots=slots) == [(n, 0) for n in "abcd"]
    spans = [times(tmp_path, n) for n in "abcd"]
    at_once = max(sum(s["start"] <= t["start"] < s["end"] for s in spans) for t in spans)
    assert at_once <= slots
    first = sorted("abcd", key=lambda n: times(tmp_path, n)["start"])[:slots]
    assert set(first) == set("abcd"[:slots])  # ties in chain order


def test_a_failure_starts_nothing_new_while_the_running_job_finishes(tmp_path, capsys):
    fail = Fake("fail", tmp_path, text="the reason it failed", code=3)
    slow = Fake("slow", tmp_path, meet=("fail",), sleep=1.5)  # still running when `fail` has ended
    after_fail = Fake("after-fail", tmp_path, after=["fail"])
    after_slow = Fake("after-slow", tmp_path, after=["slow"])  # its dependency ends well, after the failure
    assert run(tmp_path, [fail, slow, after_fail, after_slow], slots=2) == [("fail", 3), ("slow", 0)]
    assert times(tmp_path, "slow")["end"] > times(tmp_path, "fail")["end"]
    assert not (tmp_path / "after-fail.start").exists() and not (tmp_path / "after-slow.start").exists()
    out = capsys.readouterr().out
    assert lines(out, "end", "fail")[0].endswith("exit 3") and lines(out, "end", "slow")[0].endswith("exit 0")
    tail = out[out.index("--- fail failed: the last") :]
    assert str(tmp_path / "logs" / "fail.log") in tail.splitlines()[0] and "the reason it failed" in tail
    assert "failed: fail (exit 3); not started: after-fail, after-slow" in out


def test_a_job_after_one_outside_the_run_starts_and_skips_are_told_from_the_log(tmp_path, capsys):
    said = {
        "built": "[sft] building (first build)\n[sft] done: x",
        "skipped": "[sft] skipped: finished with the same inputs (m.json)",
        "dpo-part": "[dpo-run] skipped: finished with the same inputs (a)\n[dpo] runs 1-2 of 6 done; last output x",
        "dpo-part-built": "[dpo-run] skipped: finished with the same inputs (a)\n[dpo-run] building (first build)",
    }
    jobs = [Fake(n, tmp_path, after=["done-before"], text=t) for n, t in said.items()]
    assert run(tmp_path, jobs, slots=1) == [(n, 0) for n in said]
    out = capsys.readouterr().out
    assert [lines(out, "end", n)[0].endswith(", skipped") for n in said] == [False, True, True, False]


def test_a_long_job_is_named_in_still_running_lines_and_verbose_prefixes_its_output(tmp_path, capsys):
    job = Fake("long", tmp_path, sleep=1.0)
    assert run(tmp_path, [job], slots=1, verbose=True, heartbeat=0.2) == [("long", 0)]
    out = capsys.readouterr().out
    assert re.search(r"^\[ *\d+:\d\d\] still running: long \(\d+ s\)$", out, re.M), out
    assert "long | hello from long\n" in out and "long | long to stderr\n" in out
    assert "hello from long\n" in (tmp_path / "logs" / "long.log").read_text()


def test_the_local_launcher_shows_verifys_report_and_returns_the_first_failures_exit(tmp_path, capsys):
    from scripts.drivers import reproduce

    pre = Fake("preflight", tmp_path, stage="preflight", text="the preflight's own output")
    verify = Fake("verify", tmp_path, after=["preflight"], stage="verify", text="7 of 7 within tolerance")
    assert reproduce.run_local([pre, verify], tmp_path / "logs", 2, False) == 0
    out = capsys.readouterr().out
    assert "=== verify ===\n7 of 7 within tolerance\n" in out and "the preflight's own output" not in out
    failing = Fake("preflight", tmp_path, stage="preflight", code=2)
    assert reproduce.run_local([failing, verify], tmp_path / "logs", 2, False) == 2
    assert "=== verify ===" not in capsys.readouterr().out


def test_the_default_is_the_cores_at_most_two(monkeypatch):
    monkeypatch.setattr(local_jobs.os, "cpu_count", lambda: 8)
    assert local_jobs.default_slots() == 2
    monkeypatch.setattr(local_jobs.os, "cpu_count", lambda: 1)
    assert local_jobs.default_slots() == 1
