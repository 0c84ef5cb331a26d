"""Run Medprompt on one benchmark: retrieve, shuffle, generate, parse, vote; resumable.

  python -m medprompt.run --config run.json        (written by scripts/medprompt.py; keys below)

Config keys: dataset, split, data_path (local JSONL or null for the hub), database (JSONL), embedding_model,
k, ensembles, choice_shuffle, adaptive, round_size, seed, max_tokens, retry_extra_tokens, max_retries,
temperature, top_p, backend, model, dtype, batch_size, base_url, limit, out.

Members are generated in rounds of `round_size`; with `adaptive`, a question stops as soon as its vote is
settled (no way of casting the remaining members' votes could change the winner), so its final answer is
the one all N members would give. A member whose answer does not parse is retried, at most max_retries
times, each with a new seed and retry_extra_tokens more tokens. Every attempt is appended to
generations.jsonl as it finishes; a rerun reads it back and continues where the last run stopped.
Outputs: generations.jsonl, evaluation.json.
"""
import argparse
import hashlib
import json
import time
import zlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from evals import records

from . import data, database, generate, prompts, shuffle
from .parse import parse_answer
from .retrieval import Retriever
from .vote import majority, settled


def prompt_sha(messages) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]


def read_done(path: Path) -> dict:
    """(qid, member) -> the attempts already generated, in order (evals.records.resume drops a cut line)."""
    done = {}
    for rec in records.resume(path):
        done.setdefault((rec["qid"], rec["member"]), []).append(rec)
    return done


class Run:
    def __init__(self, cfg: dict, generator=None, embedder=None):
        self.cfg, self.out = cfg, Path(cfg["out"])
        self.out.mkdir(parents=True, exist_ok=True)
        self.questions = data.load(cfg["dataset"], cfg.get("split", "test"), cfg.get("data_path"), cfg.get("limit"))
        self.db = database.load(cfg["database"])
        self._embedder, self._generator = embedder, generator
        self.done = read_done(self.out / "generations.jsonl")

    @property
    def generator(self):
        if self._generator is None:
            c = self.cfg
            self._generator = generate.make(c["backend"], c["model"], dtype=c.get("dtype", "float32"),
                                            batch_size=c.get("batch_size", 16), temperature=c.get("temperature", 0.0),
                                            top_p=c.get("top_p", 1.0), seed=c["seed"], base_url=c.get("base_url"),
                                            tensor_parallel_size=c.get("gpus", 1))
        return self._generator

    def prepare(self):
        from .embed import Embedder
        emb = self._embedder or Embedder(self.cfg["embedding_model"])
        questions = [r["question"] for r in self.db]
        key = hashlib.sha256(json.dumps([self.cfg["embedding_model"], questions]).encode()).hexdigest()[:16]
        cache = self.out / f"database-vectors-{key}.npy"  # a resumed run does not embed the database again
        if cache.exists():
            vectors = np.load(cache)
        else:
            vectors = emb.encode(questions)
            np.save(cache, vectors)
        retriever = Retriever(vectors, questions)
        nn = retriever.neighbours(emb.encode([q.question for q in self.questions]),
                                  [q.question for q in self.questions], self.cfg["k"])
        self.examples = {q.id: [self.db[i] for i in idx] for q, idx in zip(self.questions, nn)}
        n = self.cfg["ensembles"]
        self.perms = {q.id: shuffle.permutations(len(q.options), n, self.cfg["seed"], q.id, self.cfg["choice_shuffle"])
                      for q in self.questions}

    def member_messages(self, q, m):
        perm = self.perms[q.id][m]
        return prompts.medprompt_messages(self.examples[q.id], q.question, shuffle.shown(q.options, perm), q.context)

    def final(self, qid, m):
        """The member's answer once its attempts are over (original letter or None), else 'pending'."""
        recs = self.done.get((qid, m), [])
        if recs and (recs[-1]["answer"] is not None or len(recs) > self.cfg["max_retries"]):
            return recs[-1]["answer"]
        return "pending"

    def run_members(self, todo, log):
        """Generate (question, member) pairs until each parses or runs out of retries."""
        c = self.cfg
        while todo:
            attempt = {(q.id, m): len(self.done.get((q.id, m), [])) for q, m in todo}
            msgs = [self.member_messages(q, m) for q, m in todo]
            seeds = [(c["seed"] + zlib.crc32(q.id.encode()) + 7919 * attempt[(q.id, m)] + 31 * m) % 2**31
                     for q, m in todo]
            tokens = [c["max_tokens"] + c["retry_extra_tokens"] * attempt[(q.id, m)] for q, m in todo]
            outs = []
            for t in sorted(set(tokens)):  # one call per token budget
                idx = [i for i, x in enumerate(tokens) if x == t]
                outs += list(zip(idx, self.generator.generate([msgs[i] for i in idx], [seeds[i] for i in idx], t)))
            retry = []
            for i, o in sorted(outs, key=lambda x: x[0]):
                q, m = todo[i]
                perm = self.perms[q.id][m]
                letter = parse_answer(o.text, len(q.options))
                rec = {"qid": q.id, "member": m, "attempt": attempt[(q.id, m)], "prompt_sha256": prompt_sha(msgs[i]),
                       "permutation": list(perm), "text": o.text, "parsed": letter,
                       "answer": shuffle.to_original(letter, perm), "prompt_tokens": o.prompt_tokens,
                       "completion_tokens": o.completion_tokens}
                log.write(json.dumps(rec) + "\n")
                self.done.setdefault((q.id, m), []).append(rec)
                if letter is None and rec["attempt"] < c["max_retries"]:
                    retry.append((q, m))
            log.flush()
            todo = retry

    def __call__(self):
        c, t0 = self.cfg, time.time()
        self.prepare()
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
        return self.evaluate(time.time() - t0)

    def evaluate(self, wall):
        per_q, correct, draws, members, parsed = [], 0, 0, 0, 0
        gen_tokens = prompt_tokens = 0
        for q in self.questions:
            answers = []
            for m in range(self.cfg["ensembles"]):
                recs = self.done.get((q.id, m))
                if not recs:
                    break  # adaptive: the vote was settled before this member
                answers.append(recs[-1]["answer"])
                gen_tokens += sum(r["completion_tokens"] for r in recs)
                prompt_tokens += sum(r["prompt_tokens"] for r in recs)
            v = majority(answers)
            ok = v.answer is not None and "ABCDEFGHIJ".index(v.answer) == q.answer
            correct += ok
            draws += v.draw
            members += len(answers)
            parsed += v.voters
            per_q.append({"qid": q.id, "answer": v.answer, "gold": "ABCDEFGHIJ"[q.answer], "correct": ok,
                          "votes": v.counts, "draw": v.draw, "members": len(answers)})
        nq = len(self.questions)
        ev = {"dataset": self.cfg["dataset"], "questions": nq, "accuracy": correct / nq if nq else 0.0,
              "parse_rate": parsed / members if members else 0.0, "draws": draws, "members_run": members,
              "members_full": nq * self.cfg["ensembles"], "generated_tokens": gen_tokens,
              "prompt_tokens": prompt_tokens, "wall_s": round(wall, 2), "adaptive": self.cfg["adaptive"],
              "per_question": per_q}
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
    except data.DataError as e:
        raise SystemExit(f"medprompt: {e}")
    print(json.dumps({k: v for k, v in ev.items() if k != "per_question"}))


if __name__ == "__main__":
    main()
