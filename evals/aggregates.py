"""The paper's aggregate scores, computed exactly as P-BETA and the model cards define them.

  Medical MMLU = plain mean of the six MMLU medical subjects
  MultiMedQA   = mean over every question of medmcqa, medqa_4options, pubmedqa and the six subjects
                 (a size-weighted mean of task accuracies; CareQA is not part of it)
  Avg          = plain mean of MedMCQA, MedQA, Medical MMLU and CareQA
Inputs and outputs are {name: Score(value, stderr, n)}; standard errors propagate assuming independent tasks.
Also reading lm-eval's results files into Scores (verify, and the OpenMedQA stage's multiple-choice column).
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

from data_prep.benchmarks import MMLU_MEDICAL, MULTIMEDQA, column_task
from scripts.core import AloeError

AVG = ["medmcqa", "medqa_4options", "mmlu_medical", "careqa_en"]


@dataclass
class Score:
    value: float
    stderr: float | None = None
    n: int | None = None


def mean(scores):
    value = sum(s.value for s in scores) / len(scores)
    se = None if any(s.stderr is None for s in scores) else math.sqrt(sum(s.stderr**2 for s in scores)) / len(scores)
    return Score(value, se)


def _weighted(scores):
    total = sum(s.n for s in scores)
    value = sum(s.n * s.value for s in scores) / total
    se = (
        None if any(s.stderr is None for s in scores) else math.sqrt(sum((s.n * s.stderr) ** 2 for s in scores)) / total
    )
    return Score(value, se, total)


def with_aggregates(per_task: dict) -> dict:
    """per_task plus mmlu_medical, multimedqa and avg wherever their members are all present."""
    out = dict(per_task)
    if all(t in out for t in MMLU_MEDICAL):
        out["mmlu_medical"] = mean([out[t] for t in MMLU_MEDICAL])
    if all(t in out and out[t].n for t in MULTIMEDQA):
        out["multimedqa"] = _weighted([out[t] for t in MULTIMEDQA])
    if all(t in out for t in AVG):
        out["avg"] = mean([out[t] for t in AVG])
    return out


NEEDS = {
    "mmlu_medical": MMLU_MEDICAL,
    "multimedqa": MULTIMEDQA,
    "avg": ["medmcqa", "medqa_4options", *MMLU_MEDICAL, "careqa_en"],
}


class VerifyError(AloeError):
    pass


def load_results(path: Path) -> dict:
    """lm-eval's results JSON (or the newest one under a folder), with a clear error when it is broken."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.rglob("results_*.json"))
        if not found:
            raise VerifyError(f"verify: no lm-eval results_*.json under {path}")
        path = found[-1]
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise VerifyError(f"verify: results file not found: {path}")
    except json.JSONDecodeError as e:
        raise VerifyError(f"verify: {path} is not valid JSON (line {e.lineno}: {e.msg})")
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise VerifyError(f"verify: {path} has no 'results' mapping: not an lm-eval results file")
    data["_path"] = str(path)
    return data


def task_metrics(measure: dict) -> dict:
    """The tasks a table reads with a metric of their own (`measure.metrics`, by column: Table 11's accuracy
    columns among its ROUGE-1 ones); every other task is read with `measure.metric`."""
    return {measure["task"].format(col=c): m for c, m in (measure.get("metrics") or {}).items()}


def measured_scores(results: dict, metric: str, scale: float, metrics: dict | None = None) -> dict:
    n = {column_task(t): v.get("effective") for t, v in (results.get("n-samples") or {}).items()}
    out = {}
    for task, vals in results["results"].items():
        task = column_task(task)
        own = (metrics or {}).get(task, metric)
        key = f"{own},none"
        if key in vals and (vals[key] is None or isinstance(vals[key], (int, float))):  # None: nothing to score
            se = vals.get(f"{own}_stderr,none")
            out[task] = Score(
                None if vals[key] is None else vals[key] * scale,
                se * scale if isinstance(se, (int, float)) else None,
                n.get(task),
            )
    return out
