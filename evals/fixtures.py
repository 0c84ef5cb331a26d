"""Offline fixtures in the real layouts of the judged evaluations' data, for the tests and `FIXTURES=1` runs.
Placeholder text only: the point is the schema, not the content."""

import json
import uuid

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


def openmedqa_rows(n: int = 6) -> dict:
    """OpenMedQA's layout (evals/openmedqa.py): {uuid: {id, question, correct_answer}}."""
    rnd = uuid.UUID(int=0)
    return {
        str(uuid.uuid5(rnd, str(i))): {
            "id": f"medqa_4opt_test_{i}",
            "question": f"[fixture {i}] A patient presents with finding {i}. What is the most likely diagnosis?",
            "correct_answer": f"Diagnosis {i}",
        }
        for i in range(n)
    }
