"""Run Medprompt on one benchmark: retrieve, shuffle, generate, parse, vote; resumable.

  python -m medprompt.run --config run.json        (written by scripts/medprompt.py; keys below)

Config keys: dataset, split, data_path (local JSONL or null for the hub), database (JSONL), embedding_model,
cache_dir (where the database's vectors are kept, by embedder and content; default: out),
k, ensembles, choice_shuffle, adaptive, round_size, seed, max_tokens, max_attempts, retry_extra_tokens,
retry_extra_temperature, retry (full|answer), temperature, top_p, backend, model, dtype, batch_size, base_url,
max_num_seqs, request_seed (null: where the engine supports it), http_retries, http_backoff_s, limit, out.

Members are generated in rounds of `round_size`; with `adaptive`, a question stops as soon as its vote is
settled (no way of casting the remaining members' votes could change the winner), so its final answer is
the one all N members would give. A member whose answer does not parse is tried again, as prompt_engine
does: `max_attempts` attempts in all, attempt a (from 0) with a new seed, max_tokens + a * retry_extra_tokens
and temperature + a * retry_extra_temperature (at most 1). With `retry: answer` the one retry instead
continues the member's own completion after ANSWER_PREFIX for at most ANSWER_TOKENS tokens, constrained to
the option letters where the backend can. Every completion is appended to generations.jsonl as it returns;
a rerun reads it back and continues where the last run stopped (a member whose request failed on a server
error is recorded with the error, and tried again by the rerun). Outputs: generations.jsonl, evaluation.json.
"""

import argparse
import hashlib
import json
import os
import time
import zlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_prep import benchmarks
from scripts import core

from . import database, generate, prompts, shuffle
from .parse import parse_answer
from .retrieval import Retriever
from .vote import majority, settled

ANSWER_PREFIX = "\nAnswer: ["  # the format the system prompt asks for (prompts.py), up to the letter
ANSWER_TOKENS = 2  # [C] the letter and the closing bracket


def prompt_sha(messages) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]


def read_done(path: Path) -> dict:
    """(qid, member) -> the attempts already generated, in order (evals.records.resume drops a cut line);
    a request that failed on a server error is left out, so it is sent again."""
    done = {}
    for rec in core.resume_jsonl(path):
        if not rec.get("error"):
            done.setdefault((rec["qid"], rec["member"]), []).append(rec)
    return done


class Run:
    def __init__(self, cfg: dict, generator=None, embedder=None):
        self.cfg, self.out = cfg, Path(cfg["out"])
        self.out.mkdir(parents=True, exist_ok=True)
        self.questions = benchmarks.load(
            cfg["dataset"], cfg.get("split", "test"), cfg.get("data_path"), cfg.get("limit")
        )
        self.db = database.load(cfg["database"])
        self._embedder, self._generator = embedder, generator
        self.done = read_done(self.out / "generations.jsonl")
        self.sent = 0  # requests this invocation sent: a rerun after a kill sends only what had not come back
        # this invocation's wall by phase: embedding (database and questions, retrieval), engine start, generation
        # (the rounds, engine start excluded), vote (tallies and evaluation.json)
        self.phases = dict.fromkeys(("embedding_s", "engine_start_s", "generation_s", "vote_s"), 0.0)

    @property
    def generator(self):
        if self._generator is None:
            c, t0 = self.cfg, time.perf_counter()
            self._generator = generate.make(
                c["backend"],
                c["model"],
                dtype=c.get("dtype"),
                batch_size=c.get("batch_size"),
                top_p=c.get("top_p"),
                seed=c["seed"],
                base_url=c.get("base_url"),
                tensor_parallel_size=c.get("gpus"),
                request_seed=c.get("request_seed"),
                max_num_seqs=c.get("max_num_seqs"),
                http_retries=c.get("http_retries"),
                http_backoff_s=c.get("http_backoff_s"),
            )
            self.phases["engine_start_s"] = time.perf_counter() - t0
        return self._generator

    def prepare(self):
        from .embed import Embedder

        emb = self._embedder or Embedder(
            self.cfg["embedding_model"], trust_remote_code=self.cfg.get("trust_remote_code", False)
        )
        questions = [r["question"] for r in self.db]
        key = hashlib.sha256(json.dumps([self.cfg["embedding_model"], questions]).encode()).hexdigest()[:16]
        # one embedding of a database per embedder, shared by every benchmark and rerun (cache_dir: the runs root's)
        cache = Path(self.cfg.get("cache_dir") or self.out) / f"database-vectors-{key}.npy"
        if cache.exists():
            vectors = np.load(cache)
        else:
            vectors = emb.encode(questions)
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                np.save(f, vectors)
            tmp.replace(cache)  # whole or absent: two jobs may embed the same database at once
        retriever = Retriever(vectors, questions)
        nn = retriever.neighbours(
            emb.encode([q.question for q in self.questions]), [q.question for q in self.questions], self.cfg["k"]
        )
        self.examples = {q.id: [self.db[i] for i in idx] for q, idx in zip(self.questions, nn, strict=True)}
        n = self.cfg["ensembles"]
        self.perms = {
            q.id: shuffle.permutations(len(q.options), n, self.cfg["seed"], q.id, self.cfg["choice_shuffle"])
            for q in self.questions
        }

    def member_messages(self, q, m):
        perm = self.perms[q.id][m]
        return prompts.medprompt_messages(self.examples[q.id], q.question, shuffle.shown(q.options, perm), q.context)

    def attempts(self) -> int:
        return 2 if self.cfg.get("retry", "full") == "answer" else self.cfg["max_attempts"]

    def final(self, qid, m):
        """The member's answer once its attempts are over (original letter or None), else 'pending'."""
        recs = self.done.get((qid, m), [])
        if recs and (recs[-1]["answer"] is not None or recs[-1].get("error") or len(recs) >= self.attempts()):
            return recs[-1]["answer"]
        return "pending"

    def request(self, q, m) -> generate.Request:
        c, recs = self.cfg, self.done.get((q.id, m), [])
        a = len(recs)
        seed = (c["seed"] + zlib.crc32(q.id.encode()) + 7919 * a + 31 * m) % 2**31
        msgs = self.member_messages(q, m)
        if a and c.get("retry", "full") == "answer":
            return generate.Request(
                msgs,
                seed,
                ANSWER_TOKENS,
                c["temperature"],
                recs[0]["text"] + ANSWER_PREFIX,
                tuple("ABCDEFGHIJ"[: len(q.options)]),
            )
        temperature = min(1.0, c["temperature"] + c["retry_extra_temperature"] * a) if a else c["temperature"]
        return generate.Request(msgs, seed, c["max_tokens"] + c["retry_extra_tokens"] * a, temperature)

    def run_members(self, todo, log):
        """Generate (question, member) pairs until each parses or runs out of attempts; each completion is
        written as it returns."""
        while todo:
            reqs = [self.request(q, m) for q, m in todo]
            self.sent += len(reqs)
            retry = []
            for i, o in self.generator.stream(reqs):
                q, m = todo[i]
                r, perm = reqs[i], self.perms[q.id][m]
                letter = parse_answer(ANSWER_PREFIX + o.text if r.prefix else o.text, len(q.options))
                rec = {
                    "qid": q.id,
                    "member": m,
                    "attempt": len(self.done.get((q.id, m), [])),
                    "prompt_sha256": prompt_sha(r.messages),
                    "permutation": list(perm),
                    "text": o.text,
                    "continued": bool(r.prefix),
                    "max_tokens": r.max_tokens,
                    "temperature": r.temperature,
                    "seed": r.seed,
                    "parsed": letter,
                    "answer": shuffle.to_original(letter, perm),
                    "prompt_tokens": o.prompt_tokens,
                    "completion_tokens": o.completion_tokens,
                    "error": o.error,
                }
                log.write(json.dumps(rec) + "\n")
                log.flush()
                self.done.setdefault((q.id, m), []).append(rec)
                if self.final(q.id, m) == "pending":
                    retry.append(i)
            todo = [todo[i] for i in sorted(retry)]

    def __call__(self):
        c, t0 = self.cfg, time.perf_counter()
        self.prepare()
        self.phases["embedding_s"] = time.perf_counter() - t0
        n, size = c["ensembles"], (c["round_size"] if c["adaptive"] else c["ensembles"])
        active = list(self.questions)
        with open(self.out / "generations.jsonl", "a") as log, tqdm(total=len(active) * n, desc="members") as bar:
            for start in range(0, n, size):
                members = range(start, min(start + size, n))
                todo = [(q, m) for q in active for m in members if self.final(q.id, m) == "pending"]
                bar.update(len(active) * len(members) - len(todo))
                self.run_members(todo, log)
                bar.update(len(todo))
                used = min(start + size, n)
                if c["adaptive"]:
                    still = [q for q in active if not settled([self.final(q.id, m) for m in range(used)], n - used)]
                    bar.update((len(active) - len(still)) * (n - used))
                    active = still
        wall = time.perf_counter() - t0
        self.phases["generation_s"] = wall - self.phases["embedding_s"] - self.phases["engine_start_s"]
        return self.evaluate(wall)

    def evaluate(self, wall):
        t0 = time.perf_counter()
        per_q, correct, draws, members, parsed, failed = [], 0, 0, 0, 0, []
        gen_tokens = prompt_tokens = 0
        for q in self.questions:
            answers = []
            for m in range(self.cfg["ensembles"]):
                recs = self.done.get((q.id, m))
                if not recs:
                    break  # adaptive: the vote was settled before this member
                answers.append(recs[-1]["answer"])
                if recs[-1].get("error"):
                    failed.append({"qid": q.id, "member": m, "error": recs[-1]["error"]})
                gen_tokens += sum(r["completion_tokens"] for r in recs)
                prompt_tokens += sum(r["prompt_tokens"] for r in recs)
            v = majority(answers)
            ok = v.answer is not None and "ABCDEFGHIJ".index(v.answer) == q.answer
            correct += ok
            draws += v.draw
            members += len(answers)
            parsed += v.voters
            per_q.append(
                {
                    "qid": q.id,
                    "answer": v.answer,
                    "gold": "ABCDEFGHIJ"[q.answer],
                    "correct": ok,
                    "votes": v.counts,
                    "draw": v.draw,
                    "members": len(answers),
                }
            )
        nq = len(self.questions)
        ev = {
            "dataset": self.cfg["dataset"],
            "questions": nq,
            "accuracy": correct / nq if nq else 0.0,
            "parse_rate": parsed / members if members else 0.0,
            "draws": draws,
            "members_run": members,
            "members_full": nq * self.cfg["ensembles"],
            "generated_tokens": gen_tokens,
            "prompt_tokens": prompt_tokens,
            "failed_members": failed,
            "requests_this_run": self.sent,
            "wall_s": round(wall, 2),
            "adaptive": self.cfg["adaptive"],
            "retry": self.cfg.get("retry", "full"),
            "max_attempts": self.attempts(),
            "backend": self.cfg["backend"],
            **getattr(self._generator, "info", {}),
            "per_question": per_q,
        }
        self.phases["vote_s"] = time.perf_counter() - t0
        ev["phases_s"] = {k: round(v, 3) for k, v in self.phases.items()}
        tmp = self.out / "evaluation.json.tmp"
        tmp.write_text(json.dumps(ev, indent=2))
        tmp.replace(self.out / "evaluation.json")
        return ev


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="JSON file with the keys listed above")
    a = ap.parse_args(argv)
    try:
        ev = Run(json.loads(Path(a.config).read_text()))()
    except benchmarks.DataError as e:
        raise SystemExit(f"medprompt: {e}") from None
    print(json.dumps({k: v for k, v in ev.items() if k not in ("per_question", "failed_members")}))
    if ev["failed_members"]:
        f = ev["failed_members"]
        raise SystemExit(
            f"medprompt: {len(f)} members failed on server errors (first: {f[0]['error']}); "
            "run again to send them again"
        )


if __name__ == "__main__":
    main()
