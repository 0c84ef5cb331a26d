"""aloe_pubmedqa: the official PubMedQA test questions, prompted as lm-eval's pubmedqa task does."""

import json
from pathlib import Path

OFFICIAL = json.loads(Path(__file__).with_name("pubmedqa_test_ids.json").read_text())
TEST_IDS = set(OFFICIAL["pubids"])
LABELLED = 1000  # rows of pqa_labeled


def official_test(dataset):
    test = dataset.filter(lambda d: str(d["pubid"]) in TEST_IDS)
    if len(dataset) >= LABELLED and len(test) != OFFICIAL["count"]:  # the full copy must hold every test question
        raise ValueError(f"pqa_labeled holds {len(test)} of the {OFFICIAL['count']} official test questions")
    return test


def doc_to_text(doc) -> str:
    return "Abstract: {}\nQuestion: {}\nAnswer:".format("\n".join(doc["context"]["contexts"]), doc["question"])
