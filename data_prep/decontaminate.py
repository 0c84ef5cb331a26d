"""Step d: remove training samples that contain a question of an evaluation test set.

Default: word n-gram overlap (n = 8) between the sample's user turns and the test questions of MedQA,
MedMCQA, PubMedQA, the six MMLU medical subjects and CareQA; a test question shorter than n words is
matched whole. With --judge, samples the n-gram pass did not flag but that share at least one 4-gram
with a test question go to an LLM judge (the paper used Nous-Hermes-2-Yi-34B) served behind an
OpenAI-compatible endpoint; a "yes" removes the sample. Every removed sample is listed in the rejects with
the test question it matched.

  python -m data_prep.decontaminate --in dedup.jsonl --out decon.jsonl --rejects r.jsonl --report r.json \\
      [--eval-dir DIR]   (DIR/<task>.jsonl in each benchmark's schema; default: the hub test splits)
      [--judge http://host:8000/v1 --judge-model NousResearch/Nous-Hermes-2-Yi-34B]
"""

import json
import re
import urllib.request
from pathlib import Path

from . import benchmarks
from .io import Report, Writer, read_jsonl, step_args

N = 8
WORD = re.compile(r"\w+")
BENCHMARKS = benchmarks.TASKS
JUDGE_PROMPT = (
    "You check training data for contamination. Is the TRAINING SAMPLE the same question as the TEST "
    "QUESTION (possibly reworded or with other options)? Reply with one word: yes or no.\n\n"
    "TEST QUESTION:\n{test}\n\nTRAINING SAMPLE:\n{sample}"
)


def words(s):
    return WORD.findall(s.lower())


def ngrams(ws, n):
    return {" ".join(ws[i : i + n]) for i in range(len(ws) - n + 1)}


class TestIndex:
    def __init__(self, questions: list):
        self.questions = questions
        self.grams, self.short, self.small = {}, {}, {}
        for qi, q in enumerate(questions):
            ws = words(q)
            if len(ws) < N:
                self.short[" ".join(ws)] = qi
            for g in ngrams(ws, N):
                self.grams.setdefault(g, qi)
            for g in ngrams(ws, 4):
                self.small.setdefault(g, qi)

    def match(self, text: str):
        ws = words(text)
        for g in ngrams(ws, N):
            if g in self.grams:
                return self.grams[g]
        joined = " " + " ".join(ws) + " "
        for s, qi in self.short.items():
            if s and f" {s} " in joined:
                return qi
        return None

    def candidate(self, text: str):
        for g in ngrams(words(text), 4):
            if g in self.small:
                return self.small[g]
        return None


def load_test_questions(eval_dir=None) -> list:
    out = []
    for name in BENCHMARKS:
        path = Path(eval_dir) / f"{name}.jsonl" if eval_dir else None
        if eval_dir and not path.exists():
            continue
        out += [q.question for q in benchmarks.load(name, "test", str(path) if path else None)]
    return out


def ask_judge(url, model, test, sample) -> bool:
    body = json.dumps(
        {
            "model": model,
            "max_tokens": 3,
            "temperature": 0,
            "messages": [{"role": "user", "content": JUDGE_PROMPT.format(test=test, sample=sample)}],
        }
    )
    req = urllib.request.Request(
        url.rstrip("/") + "/chat/completions", body.encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        reply = json.loads(r.read())["choices"][0]["message"]["content"]
    return reply.strip().lower().startswith("yes")


def user_text(row):
    msgs = row.get("messages") or row["prompt"]
    return "\n".join(m["content"] for m in msgs if m["role"] == "user")


def run(inp, out, rejects, report_path, eval_dir=None, judge=None, judge_model=None):
    index = TestIndex(load_test_questions(eval_dir))
    rep = Report("decontaminate", rejects)
    with Writer(out) as w:
        for _, row, _ in read_jsonl(inp):
            rep.saw(row["source"])
            text = user_text(row)
            qi = index.match(text)
            reason = f"{N}-gram overlap with a test question" if qi is not None else None
            if qi is None and judge:
                cand = index.candidate(text)
                if cand is not None and ask_judge(judge, judge_model, index.questions[cand], text):
                    qi, reason = cand, "LLM judge: same as a test question"
            rep.route(w, row, reason, test_question=None if qi is None else index.questions[qi])
    return rep.close(report_path)


def main(argv=None):
    ap = step_args(__doc__)
    ap.add_argument("--eval-dir", help="local test sets, <task>.jsonl in each benchmark's schema")
    ap.add_argument("--judge", help="OpenAI-compatible base URL of the judge model")
    ap.add_argument("--judge-model", default="NousResearch/Nous-Hermes-2-Yi-34B")
    a = ap.parse_args(argv)
    print(run(a.inp, a.out, a.rejects, a.report, a.eval_dir, a.judge, a.judge_model))


if __name__ == "__main__":
    main()
