"""The chain-of-thought database: build it with a generator model, or load an existing one.

A database is a JSONL file of records {id, question, options, answer (index), reasoning[, context]}.
Building one (Medprompt's self-generated CoT, P-BETA §6): for each training question the generator is
asked to summarise the question, analyse each option and conclude; only answers that parse to the
correct option are kept. Loading checks every record and names the file and line of a bad one.
"""

import json
from pathlib import Path

from data_prep.benchmarks import DataError, read_jsonl

from .parse import parse_answer
from .prompts import cot_messages

FIELDS = {"id": str, "question": str, "options": list, "answer": int, "reasoning": str}


def load(path) -> list:
    path = Path(path)
    if path.is_dir():
        path = path / "database.jsonl"
    records = []
    for n, row in read_jsonl(path):
        for key, typ in FIELDS.items():
            if key not in row:
                raise DataError(f"{path}:{n}: database record lacks {key!r}")
            if not isinstance(row[key], typ):
                raise DataError(f"{path}:{n}: {key!r} should be {typ.__name__}, got {type(row[key]).__name__}")
        if not 0 <= row["answer"] < len(row["options"]):
            raise DataError(f"{path}:{n}: answer {row['answer']} is not an option index")
        records.append(row)
    if not records:
        raise DataError(f"{path}: the database is empty")
    return records


def build(questions: list, generator, out: Path, tries: int = 3, max_tokens: int = 1000, seed: int = 0) -> dict:
    """Generate CoT answers; keep those whose parsed letter is the correct option. Returns counts."""
    kept, pending = {}, list(questions)
    generated = 0
    for attempt in range(tries):
        if not pending:
            break
        reqs = [
            (cot_messages(q.question, q.options, q.context), seed + 1000 * attempt + i) for i, q in enumerate(pending)
        ]
        outs = generator.generate([m for m, _ in reqs], [s for _, s in reqs], max_tokens)
        still = []
        for q, o in zip(pending, outs):
            generated += o.completion_tokens
            letter = parse_answer(o.text, len(q.options))
            if letter is not None and "ABCDEFGHIJ".index(letter) == q.answer:
                kept[q.id] = {
                    "id": q.id,
                    "question": q.question,
                    "options": q.options,
                    "answer": q.answer,
                    "reasoning": o.text.rsplit("Answer", 1)[0].strip(),
                    "context": q.context,
                }
            else:
                still.append(q)
        pending = still
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with open(tmp, "w") as f:
        for q in questions:
            if q.id in kept:
                f.write(json.dumps(kept[q.id]) + "\n")
    tmp.replace(out)
    return {"questions": len(questions), "kept": len(kept), "generated_tokens": generated}


def main(argv=None):
    """Build a CoT database from a training set with a generator model."""
    import argparse

    from data_prep import benchmarks

    from . import generate

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, help="e.g. medqa_4options, medmcqa")
    ap.add_argument("--split", default="train")
    ap.add_argument("--data-path", help="local JSONL in the dataset's schema (default: the hub)")
    ap.add_argument("--model", required=True, help="generator (the paper: meta-llama/Llama-3.1-70B-Instruct)")
    ap.add_argument("--backend", default="vllm", choices=("vllm", "hf", "openai"))
    ap.add_argument("--base-url")
    ap.add_argument("--out", required=True)
    ap.add_argument("--tries", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=1000)
    ap.add_argument("--limit", type=int)
    a = ap.parse_args(argv)
    questions = benchmarks.load(a.dataset, a.split, a.data_path, a.limit)
    gen = generate.make(a.backend, a.model, base_url=a.base_url, temperature=0.0)
    print(json.dumps(build(questions, gen, Path(a.out), a.tries, a.max_tokens)))


if __name__ == "__main__":
    main()
