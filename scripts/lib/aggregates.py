"""The paper's aggregate scores, computed exactly as P-BETA and the model cards define them.

  Medical MMLU = plain mean of the six MMLU medical subjects
  MultiMedQA   = mean over every question of medmcqa, medqa_4options, pubmedqa and the six subjects
                 (a size-weighted mean of task accuracies; CareQA is not part of it)
  Avg          = plain mean of MedMCQA, MedQA, Medical MMLU and CareQA
Inputs and outputs are {name: Score(value, stderr, n)}; standard errors propagate assuming independent tasks.
"""

import math
from dataclasses import dataclass

MMLU_MEDICAL = [
    "mmlu_anatomy",
    "mmlu_clinical_knowledge",
    "mmlu_college_biology",
    "mmlu_college_medicine",
    "mmlu_medical_genetics",
    "mmlu_professional_medicine",
]
MULTIMEDQA = ["medmcqa", "medqa_4options", "pubmedqa", *MMLU_MEDICAL]
AVG = ["medmcqa", "medqa_4options", "mmlu_medical", "careqa_en"]
# The repository's tasks that stand for an lm-eval task (recipes/tasks/mcqa/aloe_pubmedqa.yaml says why).
TASK_ALIASES = {"aloe_pubmedqa": "pubmedqa"}


def column_task(task: str) -> str:
    """The task a result stands for: a local-fixture run (aloe_local_*) and an alias as the task they replace."""
    task = task.removeprefix("aloe_local_")
    return TASK_ALIASES.get(task, task)


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
