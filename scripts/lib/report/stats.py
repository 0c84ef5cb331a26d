"""Confidence intervals that stay within 0-100: Wilson's score interval for a proportion, and for the paper's
aggregates (means of task accuracies) the same interval at the aggregate's effective sample size."""

import math

from evals.aggregates import NEEDS, Score, with_aggregates

Z = 1.96  # 95%


def wilson(k: float, n: float, z: float = Z) -> tuple[float, float] | None:
    """The Wilson score interval of k successes in n trials, in percent (always within 0-100); None when n is 0."""
    if not n:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, 100 * (centre - half)), min(100.0, 100 * (centre + half))


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
