"""OpenMedQA (P-CR Table 5): the MedQA test questions rephrased open-ended, answered in free text by the model and
judged against the reference answer by an LLM (P-CR: DeepSeek-R1); accuracy and its drop from multiple-choice MedQA.

Layout (HPAI-BSC/OpenMedQA, `OpenMedQA.json`, 1,272 questions: MedQA's 1,273 less index 454, an image question;
dataset card): one JSON object keyed by a uuid, each value {id: "medqa_4opt_test_<i>", question, correct_answer}.
Seen in prompt_engine's bundled copy (datasets/openmedqa/openmedqa_test.json, the code index); the hub file's own
rows were not seen (layout there: unverified), so a JSON list of the same objects is read as well.

The judge reads the question, the generated answer and the ground truth and ends with <VERDICT>1</VERDICT> (the
answer matches) or <VERDICT>0</VERDICT>: the tag prompt_engine's src/qa/evaluate.py reads. A reasoning judge's
<think> block is dropped first; no tag, a value other than 0 or 1, or tags that disagree: unparsed, counted apart
and as not correct (accuracy = correct / questions). prompt_engine retried unparsed verdicts with a sampling judge;
this judge decodes greedily, so a retry would repeat itself.
"""

import json
import math
import re

from scripts.core import AloeError

REPO, FILE = "HPAI-BSC/OpenMedQA", "OpenMedQA.json"
JUDGE = "deepseek-ai/DeepSeek-R1"  # P-CR §OpenMedQA
JUDGE_MAX_TOKENS = 2000  # prompt_engine's budget for a DeepSeek judge (src/qa/evaluate.py): R1 thinks first
MAX_TOKENS = 2000  # the answer's budget: prompt_engine's OpenMedQA sampling (aloe_facts §3.2)
SEED = 0
# [C] P-CR gives no answering prompt in the text; a plain instruction (single turn, no shots)
SYSTEM = (
    "You are a medical expert. Answer the question with the single most likely answer, stated plainly, "
    "followed by a brief justification."
)
# [C] our wording of the judge's task; the verdict tag is prompt_engine's
JUDGE_SYSTEM = (
    "You grade answers to medical exam questions. You are given a question, a generated answer and the ground "
    "truth. Decide whether the generated answer gives the same final answer as the ground truth (wording may differ; "
    "a different or hedged answer is wrong). Reply with your verdict as <VERDICT>1</VERDICT> if it matches and "
    "<VERDICT>0</VERDICT> if it does not."
)
VERDICT = re.compile(r"<verdict>\s*(.*?)\s*</verdict>", re.IGNORECASE | re.DOTALL)
THINK = re.compile(r"<think>.*?</think>", re.IGNORECASE | re.DOTALL)


class OpenMedQAError(AloeError, ValueError):
    pass


def load(path) -> list:
    """[{id, question, answer}] in file order; a row without a question or a correct answer is an error."""
    data = json.loads(open(path, encoding="utf-8").read())
    rows = list(data.values()) if isinstance(data, dict) else data
    out = []
    for n, row in enumerate(rows):
        try:
            out.append({"id": str(row["id"]), "question": row["question"], "answer": row["correct_answer"]})
        except (KeyError, TypeError) as e:
            raise OpenMedQAError(f"{path}: row {n} is not an OpenMedQA row ({type(e).__name__}: {e})") from None
    return out


def answer_messages(question: str) -> list:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


def judge_messages(row: dict, answer: str) -> list:
    user = f"Question: {row['question']}\n\nGenerated answer: {answer}\n\nGround truth: {row['answer']}"
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def parse(text: str) -> int | None:
    """1 or 0 from the judge's output, None when it does not parse."""
    text = text or ""
    if re.search(r"<think>", text, re.IGNORECASE) and not THINK.search(text):
        return None  # cut off while thinking
    found = set(VERDICT.findall(THINK.sub("", text)))
    return int(found.pop()) if found in ({"0"}, {"1"}) else None


def accuracy(verdicts: list) -> dict:
    """Accuracy (%) over every question, unparsed verdicts counted as wrong and reported."""
    n, k = len(verdicts), sum(v == 1 for v in verdicts)
    p = k / n if n else None
    return {
        "questions": n,
        "correct": k,
        "unparsed": sum(v is None for v in verdicts),
        "acc": None if p is None else 100 * p,
        "stderr": None if p is None else 100 * math.sqrt(p * (1 - p) / max(n - 1, 1)),
    }


def results_file(open_acc: dict, mc: tuple, config: dict) -> dict:
    """lm-eval's shape, tasks openmedqa_{open,mc,drop} (acc in %, P-CR Table 5's columns). mc: (acc, stderr) of
    multiple-choice MedQA (x100), or (None, None). The drop's stderr treats the two as independent (an upper bound
    for the same questions answered twice)."""
    (o, so), (m, sm) = (open_acc["acc"], open_acc["stderr"]), mc
    known = None not in (o, so, m, sm)
    drop = (o - m, math.sqrt(so * so + sm * sm)) if known else (None, None)
    res = {
        f"openmedqa_{col}": {"acc,none": v, "acc_stderr,none": se}
        for col, (v, se) in (("open", (o, so)), ("mc", mc), ("drop", drop))
    }
    res["openmedqa_open"]["unparsed,none"] = open_acc["unparsed"]
    n = {"openmedqa_open": {"original": open_acc["questions"], "effective": open_acc["questions"]}}
    return {"results": res, "n-samples": n, "config": config}
