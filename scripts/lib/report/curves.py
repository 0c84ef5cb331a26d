"""Training curves from the tools' own logs: TensorBoard event files where the run has them (TRACKER=tensorboard),
else the SFT losses its manifest records and OpenRLHF's per-micro-step progress log of each DPO run."""

import re
from pathlib import Path

EVENTS = "events.out.tfevents*"
POSITION = re.compile(r"epoch (\d+):.*?(\d+)/\d+ \[")  # tqdm's "Train step of epoch E: ... k/N [": one micro-step


def tensorboard_scalars(folder: Path) -> dict:
    """{tag: [(step, value)]} of every scalar in the event files under `folder` ({} without any), steps sorted."""
    dirs = sorted({f.parent for f in Path(folder).rglob(EVENTS)})
    if not dirs:
        return {}
    from tensorboard.backend.event_processing import event_accumulator as ea

    out = {}
    for d in dirs:
        acc = ea.EventAccumulator(str(d), size_guidance={ea.SCALARS: 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return {tag: sorted(points) for tag, points in out.items()}


def progress_steps(text: str, step: re.Pattern) -> list:
    """[(loss, acc, chosen_reward, reject_reward)] per micro-step of a DPO progress log (the bar redraws a step
    several times: its last values count), `step` matching the four values (scripts/lib/openrlhf_log.py's STEP)."""
    steps = {}
    for line in re.split(r"[\r\n]", text):
        where, values = POSITION.search(line), step.search(line)
        if where and values:
            steps[(int(where.group(1)), int(where.group(2)))] = [float(x) for x in values.groups()]
    return [steps[k] for k in sorted(steps)]


def _pick(scalars: dict, name: str) -> list:
    """The points of the tag `name`, else train/<name> (what the trainers write), else any <group>/<name>."""
    others = sorted(t for t in scalars if t.endswith("/" + name))
    tag = next((t for t in (name, f"train/{name}", *others) if t in scalars), None)
    return [(float(s), v) for s, v in scalars[tag]] if tag else []


def sft(folder: Path, manifest: dict | None) -> dict | None:
    """{"source", "loss": [(step, loss)]} of the SFT stage, or None."""
    scalars = tensorboard_scalars(folder)
    if _pick(scalars, "loss"):
        return {"source": "TensorBoard event files", "loss": _pick(scalars, "loss")}
    losses = ((manifest or {}).get("metrics") or {}).get("losses") or []
    return {"source": "manifest metrics.losses", "loss": list(enumerate(losses, 1))} if losses else None


def dpo_run(folder: Path, manifest: dict | None, step: re.Pattern) -> dict | None:
    """{"source", "loss", "acc", "margin": [(step, value)]} of one DPO run: event files, else the progress log, else
    the first and last values its manifest records."""
    scalars = tensorboard_scalars(folder)
    if _pick(scalars, "loss"):
        chosen, rejected = _pick(scalars, "chosen_reward"), dict(_pick(scalars, "reject_reward"))
        margin = [(s, v - rejected[s]) for s, v in chosen if s in rejected]
        return {"source": "TensorBoard event files", "loss": _pick(scalars, "loss"), "acc": _pick(scalars, "acc"),
                "margin": margin}  # fmt: skip
    log = folder / "log.txt"
    steps = progress_steps(log.read_text(errors="replace"), step) if log.is_file() else []
    if steps:
        points = [(i, loss, acc, chosen - rejected) for i, (loss, acc, chosen, rejected) in enumerate(steps)]
        return {"source": "OpenRLHF progress log (log.txt)", **_curves(points)}
    m = (manifest or {}).get("metrics") or {}
    ends = [
        (i, m.get(f"loss_{w}"), m.get(f"acc_{w}"), m.get(f"reward_margin_{w}")) for i, w in enumerate(["first", "last"])
    ]
    ends = [e for e in ends if None not in e]
    return {"source": "manifest metrics (first, last)", **_curves(ends)} if ends else None


def _curves(points) -> dict:
    """(step, loss, acc, margin) rows as three curves."""
    return {"loss": [(p[0], p[1]) for p in points], "acc": [(p[0], p[2]) for p in points],
            "margin": [(p[0], p[3]) for p in points]}  # fmt: skip
