"""Step c: deduplicate, exact first, then MinHash LSH near-duplicates at the paper's thresholds.

Exact: the same normalised text (lower case, single spaces) as an earlier sample. Near: MinHash over word
5-grams with LSH banding; as in datatrove (the paper's tool), the band layout sets the threshold:
14 bands x 8 rows, (1/14)^(1/8) = 0.72 for single-turn QA (question + answer), and 14 bands x 10 rows,
0.77, for multi-turn dialogues (turns with speaker names). Like datatrove, candidates are not re-verified.
The first sample of a cluster is kept. Two streaming passes; memory is the band hashes (14 x 8 bytes a
sample) and the exact-hash set, whatever the corpus size.

  python -m data_prep.dedup --in clean.jsonl --out dedup.jsonl --rejects r.jsonl --report r.json
"""

import hashlib
import json
import re
import sys
import zlib

import numpy as np

from .io import Report, Writer, parallel_map, step_main

BANDS = 14
ROWS = {"qa": 8, "multi_turn": 10}  # thresholds (1/14)^(1/8) = 0.72, (1/14)^(1/10) = 0.77
NGRAM = 5
PRIME = np.uint64(4294967291)  # largest prime below 2**32
_rng = np.random.default_rng(1)
A = _rng.integers(1, 2**32 - 5, size=BANDS * max(ROWS.values()), dtype=np.uint64)
B = _rng.integers(0, 2**32 - 5, size=BANDS * max(ROWS.values()), dtype=np.uint64)
WORD = re.compile(r"\w+")


def kind(row) -> str:
    msgs = row.get("messages") or row["prompt"] + row["chosen"]
    return "multi_turn" if sum(m["role"] == "user" for m in msgs) > 1 else "qa"


def text_of(row) -> str:
    """QA: question + answer; multi-turn: the turns with speaker names (P-BETA §4.1.1)."""
    if "messages" in row:
        msgs = row["messages"]
        if kind(row) == "qa":
            return " ".join(m["content"] for m in msgs if m["role"] != "system")
        return "\n".join(f"{m['role']}: {m['content']}" for m in msgs if m["role"] != "system")
    return " ".join(m["content"] for m in row["prompt"] + row["chosen"])


def exact_key(text: str) -> bytes:
    return hashlib.blake2b(" ".join(text.lower().split()).encode(), digest_size=16).digest()


def signature(text: str, rows: int) -> np.ndarray:
    """BANDS*rows MinHash values of the word 5-gram set (a short text is one shingle)."""
    words = np.fromiter((zlib.crc32(w.encode()) for w in WORD.findall(text.lower())), dtype=np.uint64)
    if len(words) >= NGRAM:
        sh = np.zeros(len(words) - NGRAM + 1, dtype=np.uint64)
        for j in range(NGRAM):  # a polynomial hash of each 5-gram, kept below 2**32
            sh = (sh * np.uint64(1000003) + words[j : len(words) - NGRAM + 1 + j]) & np.uint64(0xFFFFFFFF)
    else:
        sh = np.array([zlib.crc32(" ".join(WORD.findall(text.lower())).encode())], dtype=np.uint64)
    sh = np.unique(sh)
    n = BANDS * rows
    return ((sh[:, None] * A[None, :n] + B[None, :n]) % PRIME).min(axis=0)


def band_keys(sig: np.ndarray, rows: int) -> np.ndarray:
    """One 64-bit key per band (the band's row values hashed together)."""
    bands = sig.reshape(BANDS, rows).astype(np.uint64)
    h = np.zeros(BANDS, dtype=np.uint64)
    for r in range(rows):
        h = h * np.uint64(0x100000001B3) ^ bands[:, r]
    return h


def find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _keys(line):
    row = json.loads(line)
    text, k = text_of(row), kind(row)
    return row["source"], exact_key(text), band_keys(signature(text, ROWS[k]), ROWS[k]), k == "multi_turn"


def run(inp, out, rejects, report_path):
    rep = Report("dedup", rejects)
    # pass 1 (all cores): exact keys and band keys
    sources, seen_exact, exact_of, keys, multi = [], {}, {}, [], []
    with open(inp) as lines:
        for idx, (source, e, bk, is_multi) in enumerate(parallel_map(_keys, lines)):
            sources.append(sys.intern(source))
            if e in seen_exact:
                exact_of[idx] = seen_exact[e]
            else:
                seen_exact[e] = idx
            keys.append(bk)
            multi.append(is_multi)
    total = len(keys)
    keys = np.array(keys, dtype=np.uint64).reshape(total, BANDS)
    multi = np.array(multi, dtype=bool)
    # near duplicates: samples sharing any band key (within the same kind) join one cluster
    parent = list(range(total))
    alive = np.ones(total, dtype=bool)
    alive[list(exact_of)] = False
    for b in range(BANDS):
        for m in (False, True):
            sel = np.nonzero(alive & (multi == m))[0]
            if len(sel) < 2:
                continue
            order = sel[np.argsort(keys[sel, b], kind="stable")]
            col = keys[order, b]
            for j in np.nonzero(col[1:] == col[:-1])[0]:
                a, c = find(parent, int(order[j])), find(parent, int(order[j + 1]))
                if a != c:
                    parent[max(a, c)] = min(a, c)
    # pass 2: keep the first of each cluster; kept lines are copied as they are
    with Writer(out) as w, open(inp) as lines:
        for idx, line in enumerate(lines):
            source = sources[idx]
            rep.saw(source)
            root = exact_of.get(idx, find(parent, idx))
            if root == idx:
                w.write_raw(line)
                rep.keep(source)
            else:
                row = json.loads(line)
                reason = "exact duplicate" if idx in exact_of else "near duplicate"
                rep.drop(source, reason, row, id=row["id"], duplicate_of=root)
    return rep.close(report_path)


def main(argv=None):
    step_main(__doc__, run, argv)


if __name__ == "__main__":
    main()
