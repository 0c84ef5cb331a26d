"""The chain as a Slurm job graph: batch scripts, `sbatch` with afterok dependencies, and a watcher.

Cluster specifics (partition, account, QOS, modules, container, GPUs per node) come from a settings file
(recipes/clusters/*.yaml), each key overridable by the environment as ALOE_SLURM_<KEY>. Every job fails
fast: `set -e`, NCCL asynchronous error handling, srun --kill-on-bad-exit for multi-node steps, and
--kill-on-invalid-dep so a failed job cancels everything that depends on it instead of leaving it pending.
"""

import math
import os
import re
import shlex
import subprocess
import time
from pathlib import Path

from scripts import core
from scripts.core import AloeError, table

from . import chain, yamlfiles

SETTINGS = {  # key: (default, what it is)
    "partition": (None, "sbatch --partition"),
    "account": (None, "sbatch --account"),
    "qos": (None, "sbatch --qos"),
    "gpus_per_node": (4, "GPUs of one node; a stage needing more per node is refused"),
    "gpu_request": (
        "--gres=gpu:{n}",
        "how to ask for n GPUs per node; null on a CPU-only cluster (ranks are processes)",
    ),
    "cpus_per_task": (None, "CPUs of one task (one task per node)"),
    "time_factor": (1.5, "time limit = the paper's hours for the job x this"),
    "time_default": ("04:00:00", "time limit of jobs without published hours"),
    "setup": ("", "shell lines run first in every job: modules, environment"),
    "container": (None, "command prefix running the stage in an image, e.g. `apptainer exec --nv aloe.sif`"),
    "sbatch": ([], "further sbatch options, e.g. [--exclusive]"),
    "requeue_warning_s": (900, "Slurm warns a job this many seconds before its time limit; the job requeues itself"),
    "max_requeues": (3, "times a job requeues itself before it ends for good (0: never)"),
    "env": (
        {},
        "variables every job exports (this cluster's NCCL settings); the preflight's all-reduce runs with them",
    ),
}


def load_settings(path) -> dict:
    """A cluster settings file, unknown keys refused (file:line), then ALOE_SLURM_<KEY> overrides."""
    path = Path(path)
    raw = yamlfiles.read_yaml(path) if path.exists() else None
    if raw is None:
        known = sorted(p.name for p in (core.ROOT / "recipes" / "clusters").glob("*.yaml"))
        raise yamlfiles.RecipeError([yamlfiles.Problem(str(path), "-", f"no cluster settings file; known: {known}")])
    bad = [
        yamlfiles.Problem(str(path), k, "unknown key" + yamlfiles.suggest(k, SETTINGS), yamlfiles.locate(path, k))
        for k in raw
        if k not in SETTINGS
    ]
    if bad:
        raise yamlfiles.RecipeError(bad)
    out = {k: raw.get(k, default) for k, (default, _) in SETTINGS.items()}
    for k in SETTINGS:
        v = os.environ.get(f"ALOE_SLURM_{k.upper()}")
        if v is not None:  # a list-valued setting is split with shell rules: "--exclusive --mem=0" is two options
            out[k] = None if v.lower() in ("", "null", "none") else shlex.split(v) if k in LISTS else v
    for k, kind in TYPED.items():
        try:
            out[k] = None if out[k] is None else kind(out[k])
        except (TypeError, ValueError):
            raise AloeError(f"{out[k]!r}: expected {kind.__name__}", file=path, key=k)
    if isinstance(out["env"], str):  # ALOE_SLURM_ENV="NCCL_IB_DISABLE=0 NCCL_SOCKET_IFNAME=ib0"
        out["env"] = dict(x.partition("=")[::2] for x in shlex.split(out["env"]))
    if not isinstance(out["env"] or {}, dict) or not all(ENV_NAME.fullmatch(str(k)) for k in out["env"] or {}):
        raise AloeError(f"{out['env']!r}: expected a mapping of variable names to values", file=path, key="env")
    out["env"] = {k: str(v) for k, v in (out["env"] or {}).items()}
    for k in LISTS:
        if not isinstance(out[k], list) or not all(isinstance(x, str) for x in out[k]):
            raise AloeError(f"{out[k]!r}: expected a list of options", file=path, key=k)
    for k in ("partition", "account", "qos", "gpu_request", *LISTS):  # values that become #SBATCH lines: one token each
        for v in out[k] if k in LISTS else [out[k]] if out[k] is not None else []:
            if not SBATCH_VALUE.fullmatch(str(v)):
                raise AloeError(f"{v!r}: expected one sbatch token (no spaces, quotes or control characters)",
                                file=path, key=k)  # fmt: skip
    out["source"] = str(path)
    return out


TYPED = {
    "gpus_per_node": int,
    "cpus_per_task": int,
    "time_factor": float,
    "requeue_warning_s": int,
    "max_requeues": int,
}  # settings converted, or refused by key
LISTS = ("sbatch",)  # list-valued settings
SBATCH_VALUE = re.compile(r"[A-Za-z0-9_.,:@%+=/{}-]+")  # what may follow `#SBATCH ` or `--key=`
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")  # a variable `env:` may set


def time_limit(hours, s: dict) -> str:
    if not hours:
        return s["time_default"]
    minutes = math.ceil(float(hours) * float(s["time_factor"]) * 60)
    return f"{minutes // 1440}-{minutes % 1440 // 60:02d}:{minutes % 60:02d}:00"


def check_fits(jobs: list, s: dict):
    too_big = [
        f"{j.name}: {j.gpus // j.nodes} GPUs per node, the cluster has {s['gpus_per_node']} "
        f"({s['source']}: gpus_per_node)"
        for j in jobs
        if j.gpus // j.nodes > s["gpus_per_node"]
    ]
    if too_big:
        raise AloeError("layout refused before anything was submitted:\n" + "\n".join(f"  {p}" for p in too_big))


def script(job, s: dict, log_dir: Path, python: str) -> str:
    """The batch script of one job (its name a plain name: it goes into #SBATCH lines)."""
    if not SBATCH_VALUE.fullmatch(job.name):
        raise AloeError(f"job name {job.name!r}: expected one sbatch token (a DPO phase or benchmark name?)")
    per_node = job.gpus // job.nodes
    opts = [
        f"--job-name=aloe-{job.name}",
        f"--nodes={job.nodes}",
        "--ntasks-per-node=1",
        f"--time={job.time or time_limit(job.hours, s)}",
        f"--output={log_dir}/%j-{job.name}.out",
    ]
    if per_node and s["gpu_request"]:
        opts.append(s["gpu_request"].format(n=per_node))
    opts += [f"--{k}={s[k]}" for k in ("partition", "account", "qos") if s[k]]
    if s["cpus_per_task"]:
        opts.append(f"--cpus-per-task={s['cpus_per_task']}")
    if s["max_requeues"] and job.requeue:
        opts += [
            "--requeue",
            f"--signal=B:USR1@{s['requeue_warning_s']}",
            "--open-mode=append",
        ]  # keep each attempt's log
    opts += list(s["sbatch"] or [])
    cmd = shlex.join(job.argv(python))
    lines = [
        "#!/bin/bash",
        *(f"#SBATCH {o}" for o in opts),
        f"# {job.name}: {job.nodes} node(s) x {per_node} GPU(s)"
        + "".join(f", {x}" for x in (job.batch and f"batch {job.batch}", job.parallel) if x),
        "set -euo pipefail",
        "export TORCH_NCCL_ASYNC_ERROR_HANDLING=1 NCCL_ASYNC_ERROR_HANDLING=1  # a dead rank ends the job",
        f"export PYTHONPATH={shlex.quote(str(core.ROOT))}",
        *(f"export {k}={shlex.quote(v)}" for k, v in s["env"].items()),
        f"cd {shlex.quote(str(core.ROOT))}",
        *(s["setup"] or "").strip().splitlines(),
        "t0=$(date +%s)",
        "trap 'echo \"[aloe] $SLURM_JOB_NAME ($SLURM_JOB_ID) exit $? after $(( $(date +%s) - t0 )) s on $SLURM_JOB_NODELIST\"' EXIT",
        *requeue_lines(s["max_requeues"] if job.requeue else 0, s["requeue_warning_s"], log_dir),
        f"{s['container'] + ' ' if s['container'] else ''}{cmd} &",
        "pid=$!",
        "set +e  # the stage's status is the job's, after any signal the requeue trap handled",
        "while kill -0 $pid 2>/dev/null; do wait $pid; done  # a handled signal ends a wait early: wait again",
        "wait $pid; exit $?  # bash keeps the stage's status, however often it is asked",
    ]
    return "\n".join(lines) + "\n"


def requeue_lines(most: int, warning_s: int, log_dir: Path) -> list:
    """Slurm's warning before the time limit (USR1 to this script) asks the stage to save and stop (SFT's trainer
    saves at the end of its current step: the file ALOE_SAVE_REQUEST names), waits for it (at most the warning
    minus a minute), then requeues the job, up to `most` times: the rerun resumes its stage from what it kept (that
    checkpoint, DPO's last periodic one and finished runs, Medprompt's returned completions) and the jobs after it
    keep waiting on the same job id."""
    if not most:
        return []
    said = '"[aloe] $SLURM_JOB_NAME ($SLURM_JOB_ID): time limit near,'
    request = shlex.quote(str(log_dir)) + '/save-request-"$SLURM_JOB_ID"'
    return [
        f"export ALOE_SAVE_REQUEST={request}",
        'rm -f "$ALOE_SAVE_REQUEST"',
        "requeue() {",
        f'  if [ "${{SLURM_RESTART_COUNT:-0}}" -lt {most} ]; then',
        f'    echo {said} saving, then requeued (restart $(( ${{SLURM_RESTART_COUNT:-0}} + 1 )) of {most})"',
        '    touch "$ALOE_SAVE_REQUEST"',
        f"    for _ in $(seq {max(warning_s - 60, 1)}); do kill -0 $pid 2>/dev/null || break; sleep 1; done",
        '    rm -f "$ALOE_SAVE_REQUEST"',
        '    scontrol requeue "$SLURM_JOB_ID"',
        f'  else echo {said} requeued {most} times already: it ends at the limit"; fi',
        "}",
        "trap requeue USR1",
    ]


def submit(jobs: list, s: dict, log_dir: Path, python: str, dry_run=False) -> dict:
    """sbatch every job in order with afterok on the jobs it waits for; returns {name: job id}."""
    if not dry_run:
        log_dir.mkdir(parents=True, exist_ok=True)
    ids = {}
    for n, job in enumerate(jobs, 1):
        path = log_dir / f"{n:02d}-{job.name}.sbatch"
        text = script(job, s, log_dir, python)
        after = [ids[a] for a in job.after if a in ids]
        dep = [f"--dependency=afterok:{':'.join(after)}", "--kill-on-invalid-dep=yes"] if after else []
        if dry_run:
            print(f"### {path.name}   (sbatch {' '.join(dep) or '(no dependency)'})\n{text}")
            ids[job.name] = f"<{job.name}>"
            continue
        path.write_text(text)
        out = subprocess.run(["sbatch", "--parsable", *dep, str(path)], capture_output=True, text=True)
        if out.returncode:
            for jid in ids.values():  # nothing half-submitted is left behind
                subprocess.run(["scancel", jid], capture_output=True)
            raise AloeError(f"sbatch refused {path}: {out.stderr.strip()}")
        ids[job.name] = out.stdout.strip().split(";")[0]
    return ids


GRAPH = [
    "job",
    "id",
    "nodes x gpus",
    "batch (micro x accum x ranks) / parallel",
    "time limit",
    "after",
    "GPU-h",
    "kWh",
    "CO2 kg",
]


def graph(jobs: list, ids: dict, s: dict, done: list = ()) -> str:
    """The job table, with the GPU-hours, energy and CO2 of every job whose hours the paper publishes
    (chain.footprint: P-BETA Appendix D's method; on another layout, ideal scaling)."""
    fp = chain.footprint(jobs)

    def cost(name):
        return [f"{x:,.2f}" for x in fp[name]] if name in fp else ["-"] * 3

    rows = [[j.name, "done (skipped)", "-", "-", "-", "-", "-", "-", "-"] for j in done]
    rows += [
        [
            j.name,
            ids.get(j.name, "-"),
            f"{j.nodes} x {j.gpus // j.nodes}",
            j.batch or j.parallel or "-",
            j.time or time_limit(j.hours, s),
            ", ".join(j.after) or "-",
            *cost(j.name),
        ]
        for j in jobs
    ]
    if fp:
        rows.append(["all", "", "", "", "", "", *cost("all")])
    return table(GRAPH, rows)


def job_state(job_id: str) -> dict:
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True).stdout
    return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)


ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED"}


def wait(ids: dict, poll=2.0) -> dict:
    """Follow the jobs until none is active; print each state change; return {name: state fields}.

    Slurm forgets an ended job after MinJobAge (300 s by default): the last state seen is kept, and a job that
    vanished while active is UNKNOWN (a failure: rerunning the command resubmits only unfinished stages)."""
    states, seen = {}, {}
    while True:
        for name, jid in ids.items():
            st = job_state(jid)
            if st:
                states[name] = st
            elif states.get(name, {}).get("JobState") in ACTIVE or name not in states:
                states[name] = {"JobState": "UNKNOWN", "Reason": "no longer known to slurm"}
        for name, st in states.items():
            now = (st.get("JobState"), st.get("Reason"))
            if seen.get(name) != now:
                print(
                    f"[slurm] {name} ({ids[name]}): {now[0]}"
                    + (f" ({now[1]})" if now[1] not in (None, "None") else ""),
                    flush=True,
                )
                seen[name] = now
        if not any(st.get("JobState") in ACTIVE for st in states.values()):
            return states
        time.sleep(poll)
