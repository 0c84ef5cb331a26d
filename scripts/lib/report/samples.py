"""lm-eval's per-sample logs (--log_samples: samples_<task>_<timestamp>.jsonl beside results_<timestamp>.json) as
one row per question: the question, its options, the model's choice, the gold answer and whether it scored."""

import re
from pathlib import Path

from data_prep.benchmarks import SOURCES, column_task, read_jsonl
from scripts.core import AloeError


def results_file(folder: Path, named: str | None = None) -> Path | None:
    """The lm-eval results file of an evaluation folder: `named` where it lies in the folder (the file verify read),
    else the newest."""
    found = sorted(folder.rglob("results_*.json"), key=lambda f: f.name)  # by the timestamp in the name
    if named and Path(named) in found:
        return Path(named)
    return found[-1] if found else None


def sample_files(results: Path) -> dict:
    """{lm-eval task: its samples file} written with `results` (the same timestamp)."""
    stamp = results.stem.removeprefix("results_")
    pattern = re.compile(rf"samples_(.+)_{re.escape(stamp)}\.jsonl")
    return {m.group(1): f for f in sorted(results.parent.glob("samples_*.jsonl")) if (m := pattern.fullmatch(f.name))}


def _float(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def row(task: str, s: dict) -> dict:
    """One sample as shown: multiple choice (one log-likelihood per option: the choice is the most likely) or
    generated (the response text); `correct` None where the metric is not a 0/1 score."""
    args = [a.get("arg_1") for a in (s.get("arguments") or {}).values() if isinstance(a, dict)]
    resps = s.get("filtered_resps") or []
    prompt = next(iter((s.get("arguments") or {}).values()), {}).get("arg_0", "")
    metric = "acc" if "acc" in s else next((m for m in s.get("metrics") or [] if m in s), None)
    score = s.get(metric) if metric else None
    out = {"doc_id": s.get("doc_id"), "question": prompt, "context": None, "options": [], "choice": None,
           "gold": str(s.get("target", "")), "metric": metric, "score": score,
           "correct": bool(score) if score in (0, 1) else None}  # fmt: skip
    lls = [_float(r[0] if isinstance(r, list) else r) for r in resps]
    if len(args) > 1 and None not in lls and len(lls) == len(args):
        out["options"] = [str(a).strip() for a in args]
        out["choice"] = max(range(len(lls)), key=lls.__getitem__)
        target = out["gold"]
        out["gold"] = int(target) if target.isdigit() else next(
            (i for i, o in enumerate(out["options"]) if o == target.strip()), target
        )  # fmt: skip
    else:
        out["choice"] = str(resps[0][0] if resps and isinstance(resps[0], list) else resps[0] if resps else "")
    convert = SOURCES.get(column_task(task), (None,) * 5)[4]
    if convert and isinstance(s.get("doc"), dict):
        try:
            q = convert(s["doc"], s.get("doc_id"))
            out.update(question=q.question, context=q.context)
            if len(q.options) == len(out["options"]):
                out.update(options=[str(o) for o in q.options], gold=q.answer)
        except (KeyError, ValueError, TypeError, IndexError):
            pass  # a doc not in the benchmark's schema: the prompt and the continuations stand
    return out


def read(files: dict) -> dict:
    """{task as verify names it: {"task": lm-eval name, "file", "rows"}} for {lm-eval task: samples file}."""
    out = {}
    for task, f in files.items():
        try:
            rows = [row(task, s) for _, s in read_jsonl(f)]
        except AttributeError as e:
            raise AloeError(f"not an lm-eval samples file ({e})", file=f)
        out[column_task(task)] = {"task": task, "file": str(f), "rows": rows}
    return out
