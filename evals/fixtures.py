"""Offline fixtures in the real layouts of the judged evaluations' data, for the tests and `FIXTURES=1` runs.
Placeholder text only: the point is the schema, not the content."""

import json

from . import seval


def seval_rows(per_cell: int = 2) -> list:
    """S-Eval attack rows (evals/seval.py layout): per_cell rows for every (attack method, risk dimension)."""
    rows = []
    for method in seval.STYLES:
        for risk in seval.RISKS:
            for k in range(per_cell):
                rows.append(
                    {
                        "traceid": f"fx-{method}-{risk}-{k}",
                        "risk_type": risk,
                        "prompt": f"[fixture {k}] a {method} wrapper around a {risk} request",
                        "ext": json.dumps({"category": method}),
                    }
                )
    return rows
