"""Step d: remove training samples that contain a question of an evaluation test set.

Default: word n-gram overlap (n = 8) between the sample's user turns and the test questions of MedQA,
MedMCQA, PubMedQA, the six MMLU medical subjects and CareQA; a test question shorter than n words is
matched whole. With --judge, samples the n-gram pass did not flag but that share at least one 4-gram
with a test question go to an LLM judge (the paper used Nous-Hermes-2-Yi-34B) served behind an
OpenAI-compatible endpoint; a "yes" removes the sample. Every removed sample is listed in the rejects with
the test question it matched (its task and id too). The report adds `contamination`: removed rows per
benchmark (a Table 9 column; a row that overlaps two benchmarks counts in both) and source, with the first
EXAMPLES pairs (training row, test question) of each cell. `make contamination` (data_prep/contamination.py)
applies the same rule the other way: which test questions a model's training data holds.

  python -m data_prep.decontaminate --in dedup.jsonl --out decon.jsonl --rejects r.jsonl --report r.json \\
      [--eval-dir DIR]   (DIR/<task>.jsonl in each benchmark's schema; default: the hub test splits)
      [--judge http://host:8000/v1 --judge-model NousResearch/Nous-Hermes-2-Yi-34B]
"""

import json
import re
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

from scripts.core import table

from . import benchmarks
from .io import Report, Writer, read_jsonl, step_args

N = 8
WORD = re.compile(r"\w+")
BENCHMARKS = benchmarks.TASKS
EXAMPLES = 2  # example pairs kept per benchmark x source cell of the contamination matrix
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
    """The test questions by their word n-grams (and whole, those under N words)."""

    def __init__(self, questions: list):
        self.questions = questions
        self.grams, self.short, self.small = {}, {}, {}
        for qi, q in enumerate(questions):
            ws = words(q)
            if 0 < len(ws) < N:
                self.short.setdefault(" ".join(ws), []).append(qi)
            for g in ngrams(ws, N):
                self.grams.setdefault(g, []).append(qi)
            for g in ngrams(ws, 4):
                self.small.setdefault(g, qi)

    def matches(self, text: str) -> list:
        """Every test question the text overlaps (a shared N-gram, or a short one whole), in the questions' order."""
        ws = words(text)
        hit = {qi for g in ngrams(ws, N) for qi in self.grams.get(g, ())}
        joined = " " + " ".join(ws) + " "
        hit.update(qi for s, qis in self.short.items() if f" {s} " in joined for qi in qis)
        return sorted(hit)

    def candidate(self, text: str):
        for g in ngrams(words(text), 4):
            if g in self.small:
                return self.small[g]
        return None


def load_test_questions(eval_dir=None) -> list:
    """(task, Question) of every test question of BENCHMARKS."""
    out = []
    for name in BENCHMARKS:
        path = Path(eval_dir) / f"{name}.jsonl" if eval_dir else None
        if eval_dir and not path.exists():
            continue
        out += [(name, q) for q in benchmarks.load(name, "test", str(path) if path else None)]
    return out


def benchmark_of(task: str) -> str:
    """The Table 9 column a task is scored in (results/reported.yaml): the six MMLU subjects are mmlu_medical."""
    return "mmlu_medical" if task in benchmarks.MMLU_MEDICAL else task


def snippet(text: str, width: int = 50) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


class Matrix:
    """Overlaps counted per benchmark and source, with the first EXAMPLES pairs of each cell."""

    def __init__(self):
        self.counts, self.examples = defaultdict(Counter), defaultdict(list)

    def add(self, benchmark, source, train_id, train_text, test_id, test_text):
        self.counts[benchmark][source] += 1
        cell = self.examples[benchmark, source]
        if len(cell) < EXAMPLES:
            cell.append({"benchmark": benchmark, "source": source, "train_id": train_id, "train": snippet(train_text),
                         "test_id": test_id, "test": snippet(test_text)})  # fmt: skip

    def report(self) -> dict:
        return {
            "counts": {b: dict(sorted(c.items())) for b, c in sorted(self.counts.items())},
            "examples": [e for cell in sorted(self.examples) for e in self.examples[cell]],
        }


EXAMPLE_KEYS = {"benchmark": "benchmark", "source": "source", "train_id": "training row", "train": "its text",
                "test_id": "test question", "test": "its text"}  # fmt: skip


def matrix_tables(matrix: dict) -> str:
    """A Matrix report as a benchmark x source table with totals, then its example pairs."""
    counts = matrix["counts"]
    sources = sorted({s for c in counts.values() for s in c})
    rows = [[b, *(c.get(s, 0) for s in sources), sum(c.values())] for b, c in counts.items()]
    examples = [[e[k] for k in EXAMPLE_KEYS] for e in matrix["examples"]]
    return f"{table(['benchmark', *sources, 'total'], rows)}\n\n{table(list(EXAMPLE_KEYS.values()), examples)}"


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
    tests = load_test_questions(eval_dir)
    index = TestIndex([q.question for _, q in tests])
    rep, matrix = Report("decontaminate", rejects), Matrix()
    with Writer(out) as w:
        for _, row, _ in read_jsonl(inp):
            rep.saw(row["source"])
            text = user_text(row)
            hits = index.matches(text)
            reason = f"{N}-gram overlap with a test question" if hits else None
            if not hits and judge:
                cand = index.candidate(text)
                if cand is not None and ask_judge(judge, judge_model, index.questions[cand], text):
                    hits, reason = [cand], "LLM judge: same as a test question"
            first = {}  # benchmark -> the first of its test questions the row overlaps
            for qi in hits:
                first.setdefault(benchmark_of(tests[qi][0]), qi)
            for b, qi in first.items():
                task, q = tests[qi]
                matrix.add(b, row["source"], row["id"], text, f"{task}:{q.id}", q.question)
            where = {}
            if hits:
                task, q = tests[hits[0]]
                where = {"test_question": q.question, "task": task, "test_id": q.id}
            rep.route(w, row, reason, **where)
    result = rep.close(report_path) | {"contamination": matrix.report()}
    Path(report_path).write_text(json.dumps(result, indent=2))
    return result


def main(argv=None):
    ap = step_args(__doc__)
    ap.add_argument("--eval-dir", help="local test sets, <task>.jsonl in each benchmark's schema")
    ap.add_argument("--judge", help="OpenAI-compatible base URL of the judge model")
    ap.add_argument("--judge-model", default="NousResearch/Nous-Hermes-2-Yi-34B")
    a = ap.parse_args(argv)
    print(run(a.inp, a.out, a.rejects, a.report, a.eval_dir, a.judge, a.judge_model))


if __name__ == "__main__":
    main()
