"""The benchmark facts, in one place: the MCQA tasks and their names, the six MMLU medical subjects, the
task-name aliases, the official PubMedQA test ids, and the loaders of each benchmark (Medprompt's questions,
decontamination's test questions), from their hub ids or from local JSONL in the same schema.

Every source is normalised to `Question(id, question, options, answer, context)`; `answer` is the index of
the correct option. A local row that does not fit its schema is an error naming the file and the line.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from scripts.core import AloeError

from .io import read_jsonl as _rows

# the six MMLU medical subjects (the cais/mmlu configs) and their lm-eval task names
MMLU_SUBJECTS = [
    "anatomy",
    "clinical_knowledge",
    "college_biology",
    "college_medicine",
    "medical_genetics",
    "professional_medicine",
]
MMLU_MEDICAL = [f"mmlu_{s}" for s in MMLU_SUBJECTS]
# the MCQA benchmarks (lm-eval task names): Medprompt's datasets, decontamination's test sets, the eval fixtures
TASKS = ["medqa_4options", "medmcqa", "pubmedqa", "careqa_en", *MMLU_MEDICAL]
# MultiMedQA as the paper scores it (CareQA is not part of it)
MULTIMEDQA = ["medmcqa", "medqa_4options", "pubmedqa", *MMLU_MEDICAL]
# The repository's tasks that stand for an lm-eval task (recipes/tasks/mcqa/aloe_pubmedqa.yaml says why).
TASK_ALIASES = {"aloe_pubmedqa": "pubmedqa"}


def column_task(task: str) -> str:
    """The task a result stands for: a local-fixture run (aloe_local_*) and an alias as the task they replace."""
    task = task.removeprefix("aloe_local_")
    return TASK_ALIASES.get(task, task)


@dataclass
class Question:
    id: str
    question: str
    options: list
    answer: int
    context: str | None = None


def _medqa(r, i):
    return Question(str(r.get("id", i)), r["sent1"], [r[f"ending{j}"] for j in range(4)], int(r["label"]))


def _medmcqa(r, i):
    return Question(str(r.get("id", i)), r["question"], [r["opa"], r["opb"], r["opc"], r["opd"]], int(r["cop"]))


def _pubmedqa(r, i):
    return Question(
        str(r.get("pubid", i)),
        r["question"],
        ["yes", "no", "maybe"],
        ["yes", "no", "maybe"].index(r["final_decision"]),
        "\n".join(r["context"]["contexts"]),
    )


def _mmlu(r, i):
    return Question(str(i), r["question"], list(r["choices"]), int(r["answer"]))


def _careqa(r, i):
    return Question(str(r.get("unique_id", i)), r["question"], [r[f"op{j}"] for j in range(1, 5)], int(r["cop"]) - 1)


# name -> (hub id, config, test split, train split, converter)
SOURCES = {
    "medqa_4options": ("GBaker/MedQA-USMLE-4-options-hf", None, "test", "train", _medqa),
    "medmcqa": ("openlifescienceai/medmcqa", None, "validation", "train", _medmcqa),
    # a script-free copy; test = the official 500 ids, train = the other 500 (recipes/tasks/mcqa/aloe_pubmedqa.yaml)
    "pubmedqa": ("qiaojin/PubMedQA", "pqa_labeled", "train", "train", _pubmedqa),
    "careqa_en": ("HPAI-BSC/CareQA", "CareQA_en", "test", None, _careqa),
    **{f"mmlu_{s}": ("cais/mmlu", s, "test", "dev", _mmlu) for s in MMLU_SUBJECTS},
}


# the official 500 PubMedQA test ids (recipes/tasks/mcqa/aloe_pubmedqa.yaml says where they come from)
PUBMEDQA_TEST_IDS = json.loads(
    (Path(__file__).resolve().parents[1] / "recipes/tasks/mcqa/pubmedqa_test_ids.json").read_text()
)["pubids"]
PUBMEDQA_TEST = set(PUBMEDQA_TEST_IDS)
SUBSETS = {"pubmedqa": {"test": lambda q: q.id in PUBMEDQA_TEST, "train": lambda q: q.id not in PUBMEDQA_TEST}}


class DataError(AloeError, ValueError):
    pass


def read_jsonl(path: Path):
    """(line number, row); a line that is not a JSON object is an error naming the file and the line."""
    if not Path(path).exists():
        raise DataError(f"{path}: file not found")
    for n, row, err in _rows(path):
        if err:
            raise DataError(f"{path}:{n}: {err}")
        yield n, row


def load(name: str, split: str = "test", path: str | None = None, limit: int | None = None) -> list:
    """Questions of a benchmark: from local JSONL when `path` is given, else from the hub."""
    if name not in SOURCES:
        raise DataError(f"unknown dataset {name!r}; known: {sorted(SOURCES)}")
    hub, config, test_split, train_split, convert = SOURCES[name]
    out = []
    if path:
        for n, row in read_jsonl(path):
            try:
                out.append(convert(row, n))
            except (KeyError, ValueError, TypeError, IndexError) as e:
                raise DataError(f"{path}:{n}: not a {name} row ({type(e).__name__}: {e})") from None
    else:
        import datasets

        want = {"test": test_split, "train": train_split}.get(split, split)
        if want is None:
            raise DataError(f"{name} has no {split} split")
        out = [convert(r, i) for i, r in enumerate(datasets.load_dataset(hub, config, split=want))]
    keep = SUBSETS.get(name, {}).get(split)
    out = [q for q in out if keep(q)] if keep else out
    return out[:limit] if limit else out
