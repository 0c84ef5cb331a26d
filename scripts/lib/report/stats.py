"""Confidence intervals that stay within a table's scale: Wilson's score interval for a proportion (evals/asr.py's),
for the paper's aggregates (means of task accuracies) the same interval at the aggregate's effective sample size,
and where no count is known the harness's standard error clipped to the scale. Shared by the report and verify's
chart (scripts/verify.py)."""

import math

from evals import asr
from evals.aggregates import NEEDS, Score, with_aggregates

Z = asr.Z  # 95%


def wilson(k: float, n: float, z: float = Z) -> tuple[float, float] | None:
    """The Wilson score interval of k successes in n trials, in percent (always within 0-100); None when n is 0."""
    lo, hi = asr.wilson(k, n, z)
    return None if lo is None else (100 * lo, 100 * hi)


def intervals(counts: dict) -> dict:
    """{task or aggregate: {k, n, ci}} from {task: (correct, questions)}: Wilson per task; an aggregate of
    evals/aggregates.py (computed the paper's way, k None) at its effective size n_eff = p(1 - p) / se^2, se the
    binomial errors of its tasks propagated as verify propagates them (the members' total n where se is 0)."""
    out = {t: {"k": k, "n": n, "ci": wilson(k, n)} for t, (k, n) in counts.items()}
    scores = {t: Score(k / n, math.sqrt(k / n * (1 - k / n) / n), n) for t, (k, n) in counts.items() if n}
    for name, s in with_aggregates(scores).items():
        if name not in out:
            total = sum(counts[t][1] for t in NEEDS[name])
            n_eff = s.value * (1 - s.value) / s.stderr**2 if s.stderr else total
            out[name] = {"k": None, "n": total, "ci": wilson(s.value * n_eff, n_eff)}
    return out


def top_of(numbers) -> float:
    """The top of a table's scale: 1 where every number of it lies within [-1, 1] (an attack success rate, Table 10's
    accuracies), 100 within [-100, 100] (percent), else none (a perplexity: inf)."""
    numbers = [abs(x) for x in numbers if x is not None]
    return next((top for top in (1.0, 100.0) if all(x <= top for x in numbers)), math.inf)


def scaled(ci, top: float):
    """A percent interval on a table's scale."""
    return None if ci is None else (ci[0] * top / 100, ci[1] * top / 100)


def clipped(value: float, stderr: float, top: float, z: float = Z) -> tuple[float, float]:
    """value +- z stderr within the scale: [0, top], or [-top, top] for a difference (a negative value: OpenMedQA's
    drop)."""
    low = -top if value < 0 else 0.0
    return max(low, value - z * stderr), min(top, value + z * stderr)
