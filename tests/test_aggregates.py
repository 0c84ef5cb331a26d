"""The aggregates reproduce the paper's own numbers from its per-task numbers."""

import math

import pytest
import yaml
from conftest import ROOT

from data_prep.benchmarks import MMLU_MEDICAL, MULTIMEDQA
from evals.aggregates import Score, with_aggregates

pytestmark = pytest.mark.unit

TABLE9 = yaml.safe_load((ROOT / "results/reported.yaml").read_text())["tables"]["table9"]["settings"]


def test_aloe_beta_8b_avg_is_the_papers():
    s = with_aggregates(
        {
            "medmcqa": Score(59.57),
            "medqa_4options": Score(64.65),
            "careqa_en": Score(70.77),
            **{t: Score(76.50) for t in MMLU_MEDICAL},
        }
    )
    assert round(s["avg"].value, 2) == 67.87
    assert s["mmlu_medical"].value == pytest.approx(76.50)


@pytest.mark.parametrize("setting", ["0-shot", "medprompt"])
def test_every_table9_avg_is_the_mean_of_its_four_columns(setting):
    for model, row in TABLE9[setting].items():
        s = with_aggregates(
            {
                "medmcqa": Score(row["medmcqa"]),
                "medqa_4options": Score(row["medqa_4options"]),
                "careqa_en": Score(row["careqa_en"]),
                **{t: Score(row["mmlu_medical"]) for t in MMLU_MEDICAL},
            }
        )
        assert abs(s["avg"].value - row["avg"]) < 0.006, model


def test_multimedqa_weights_by_questions_and_excludes_careqa():
    tasks = {t: Score(50.0, 1.0, 100) for t in MULTIMEDQA}
    tasks["medmcqa"] = Score(80.0, 1.0, 700)  # 700 of 1500 questions
    tasks["careqa_en"] = Score(0.0, 1.0, 5000)  # must not count
    s = with_aggregates(tasks)
    assert s["multimedqa"].value == pytest.approx((700 * 80 + 800 * 50) / 1500)
    assert s["multimedqa"].stderr == pytest.approx(math.sqrt(700**2 + 8 * 100**2) / 1500)


def test_an_aggregate_is_absent_when_a_member_is_missing():
    s = with_aggregates({t: Score(50.0, 1.0, 10) for t in MULTIMEDQA if t != "pubmedqa"})
    assert "multimedqa" not in s and "mmlu_medical" in s and "avg" not in s
