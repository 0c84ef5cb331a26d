"""Step c: deduplicate, exact first, then near duplicates: MinHash LSH proposes pairs, their true Jaccard decides.

Exact: the same words in the same order as an earlier sample (case, spacing and punctuation aside). Near: the
sets of word 5-gram shingles (32-bit hashes; words: runs of ASCII letters, digits, _ and non-ASCII characters).
MinHash LSH with a loose band layout proposes candidate pairs (samples of the same kind sharing a band key; in a
bucket, each sample with the one before it); a pair counts only when the true Jaccard of its two shingle sets
reaches VERIFY[kind]. The first sample of a cluster of counted pairs is kept; a candidate that fails
verification is kept and counted in the report ("candidate rejected by verification").
The paper (P-BETA §4.1.1) publishes only datatrove's defaults, whose band layout is the threshold: 14 bands x 8
rows, (1/14)^(1/8) = 0.72, for single-turn QA (question + answer), 14 x 10, 0.77, for multi-turn dialogues
(turns with speaker names), candidates not verified. That misses most copies edited at scattered places (5-15%
of the words changed leave a Jaccard of 0.3-0.6: 6% caught), and a looser layout unverified removes MCQs that
share only their template. The layout and thresholds below are ours [C]; scripts/bench/dedup_bench.py measures
them. Three streaming passes: keys (all cores, each reading its own part of the file), the shingle sets of the
candidate rows only (all cores), the output. Memory: the band and exact keys ((BANDS + 1) x 8 bytes a sample),
the clusters and the candidate rows' shingle sets (4 bytes a shingle).

  python -m data_prep.dedup --in clean.jsonl --out dedup.jsonl --rejects r.jsonl --report r.json
"""

import functools
import json
import os
import sys

import numpy as np

from .io import Report, Writer, parallel_map, step_main

NGRAM = 5
# [C] 16 bands x 2 rows: a pair at Jaccard J becomes a candidate with probability 1 - (1 - J^2)^16: 0.88 at
# 0.35, 0.99 at 0.5; pairs sharing only a template (J 0.1-0.2) often do too, and verification rejects them.
BANDS, ROWS = 16, 2
# [C] the true Jaccard that makes a pair near duplicates: 0.35 for QA, that of a copy with 1 word in 8 replaced at
# scattered places; 0.05 more for multi-turn, as the paper's 0.77 vs 0.72 (speaker names are shared shingles).
# MCQs sharing only their stem stay below 0.2 (dedup_bench).
VERIFY = {"qa": 0.35, "multi_turn": 0.4}
JOB = 1 << 22  # bytes of the file a worker reads (a result handed back costs the pool's helper thread a busy wait)
BATCH = 1 << 19  # bytes of samples hashed together (numpy's cost per call is paid once a batch)
_P = 0x100000001B3  # odd, so invertible modulo 2**64: the hashes of all words of a batch from one prefix sum
_MUL = np.random.default_rng(1).integers(0, 2**64, size=NGRAM, dtype=np.uint64) | np.uint64(1)  # 5-gram weights
_KIND = np.uint64(0x9E3779B97F4A7C15)  # salts multi-turn band keys: the two kinds never share a bucket


def kind(row) -> str:
    msgs = row.get("messages") or row["prompt"] + row["chosen"]
    return "multi_turn" if sum(m["role"] == "user" for m in msgs) > 1 else "qa"


def text_of(row, k: str) -> str:
    """QA: question + answer; multi-turn: the turns with speaker names (P-BETA §4.1.1); k is kind(row)."""
    if "messages" in row:
        msgs = row["messages"]
        if k == "qa":
            return " ".join(m["content"] for m in msgs if m["role"] != "system")
        return "\n".join(f"{m['role']}: {m['content']}" for m in msgs if m["role"] != "system")
    return " ".join(m["content"] for m in row["prompt"] + row["chosen"])


@functools.cache
def _tables(n: int):
    """For sequences shorter than n (a power of two): _P^t and _P^-t modulo 2**64, and a work array for prefix
    sums, kept (a fresh one each batch costs 5x the sums)."""
    pw = np.full(n, _P, dtype=np.uint64)
    inv = np.full(n, pow(_P, -1, 2**64), dtype=np.uint64)
    pw[0] = inv[0] = 1
    return np.cumprod(pw), np.cumprod(inv), np.zeros(n + 1, dtype=np.uint64)


def _poly(x, starts, ends):
    """The polynomial hash (base _P, modulo 2**64) of each x[start:end], all from one prefix sum."""
    pw, inv, prefix = _tables(1 << len(x).bit_length())
    sums = prefix[1 : len(x) + 1]
    np.multiply(x, inv[: len(x)], out=sums)
    np.cumsum(sums, out=sums)
    return (prefix[ends] - prefix[starts]) * pw[ends - 1]


def _mix(h):
    """splitmix64's finaliser: every output bit depends on every input bit."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def words(texts):
    """The 64-bit hashes of the words of all texts, in order, and where each text's words begin (and end)."""
    encoded = [t.lower().encode() for t in texts]
    buf = np.frombuffer(b"\0" + b"\0".join(encoded) + b"\0", dtype=np.uint8)  # never a word at either end
    is_word = (buf >= 128) | (buf - np.uint8(97) < 26) | (buf - np.uint8(48) < 10) | (buf == 95)  # \w, roughly
    edges = np.flatnonzero(is_word[1:] != is_word[:-1]) + 1  # a word's first byte, then one past its last
    at = np.cumsum([1] + [len(e) + 1 for e in encoded])
    return _mix(_poly(buf, edges[0::2], edges[1::2])), np.searchsorted(edges[0::2], at)


def shingles(hashes, first):
    """The word 5-gram hashes (uint32) of each text, flat (in order, repeats kept), and the offsets of the
    texts in it; a text of fewer than 5 words is one shingle, of its words (none: 0)."""
    count = np.diff(first)
    padded = np.insert(hashes, np.repeat(first[1:], NGRAM), 0)  # NGRAM zeros after each text
    grams = sum(padded[j : len(padded) - NGRAM + 1 + j] * _MUL[j] for j in range(NGRAM))
    n = np.maximum(count - NGRAM + 1, 1)
    offsets = np.concatenate(([0], np.cumsum(n)))
    at = np.repeat(first[:-1] + NGRAM * np.arange(len(count)) - offsets[:-1], n) + np.arange(offsets[-1])
    return (_mix(grams[at]) >> np.uint64(32)).astype(np.uint32), offsets


def exact_keys(hashes, first):
    """One 64-bit key per text: its words in order (case, spacing and punctuation aside)."""
    return _mix(_poly(hashes, first[:-1], first[1:]))


@functools.cache
def _hash_params(n: int):
    a, b = np.random.default_rng(2).integers(0, 2**32, size=(2, n), dtype=np.uint64).astype(np.uint32)
    return a | np.uint32(1), b  # a odd: each hash a permutation


def minhash(flat, offsets, n: int):
    """(texts, n) MinHash values: over a text's shingles x, the minimum of each of n hashes (a*x + b) mod 2**32."""
    a, b = _hash_params(n)
    h = np.multiply.outer(a, flat)
    h += b[:, None]
    return np.minimum.reduceat(h, offsets[:-1], axis=1).T  # along the contiguous axis: 7x faster


def band_keys(sig):
    """(texts, BANDS) 64-bit keys: the ROWS values of each band hashed together."""
    bands = sig[:, : BANDS * ROWS].reshape(len(sig), BANDS, ROWS).astype(np.uint64)
    h = np.zeros(bands.shape[:2], dtype=np.uint64)
    for r in range(ROWS):
        h = h * np.uint64(_P) ^ bands[:, :, r]
    return h


def _ranges(path):
    """(path, start, end): byte ranges of about JOB bytes, each read by a worker itself."""
    size = os.path.getsize(path)
    return [(path, start, min(start + JOB, size)) for start in range(0, size, JOB)]


def _lines(path, start, end):
    """The lines that begin in [start, end)."""
    with open(path, "rb") as f:
        f.seek(max(start - 1, 0))
        pos = start - 1 + len(f.readline()) if start else 0  # the end of a line begun before start
        while pos < end and (line := f.readline()):
            pos += len(line)
            yield line


def _batches(lines):
    """Lists of lines of about BATCH bytes."""
    batch, size = [], 0
    for line in lines:
        batch.append(line)
        size += len(line)
        if size >= BATCH:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _keys(job):
    """(sources, exact keys, band keys, multi-turn flags) of the rows of a byte range, a batch at a time."""
    out = []
    for lines in _batches(_lines(*job)):
        rows = [json.loads(line) for line in lines]
        kinds = [kind(r) for r in rows]
        hashes, first = words(list(map(text_of, rows, kinds)))
        multi = np.array(kinds) == "multi_turn"
        keys = band_keys(minhash(*shingles(hashes, first), BANDS * ROWS)) ^ multi[:, None] * _KIND
        sources = [sys.intern(r["source"]) for r in rows]  # one string a source in the pickle back
        out.append((sources, exact_keys(hashes, first), keys, multi))
    return out


def _shingle_sets(job):
    """The shingle sets (each sorted) of the rows of a byte range marked in its mask, flat, and their sizes."""
    *where, mask = job
    flat, sizes = [], []
    for lines in _batches(line for line, wanted in zip(_lines(*where), mask) if wanted):
        hashes, offsets = shingles(*words([text_of(r, kind(r)) for r in map(json.loads, lines)]))
        text = np.repeat(np.arange(len(offsets) - 1, dtype=np.uint64), np.diff(offsets))
        code = np.unique(text << np.uint64(32) | hashes)
        flat.append(code.astype(np.uint32))
        sizes.append(np.bincount((code >> np.uint64(32)).astype(np.int64), minlength=len(offsets) - 1))
    return np.concatenate(flat), np.concatenate(sizes)


def candidates(keys, alive):
    """The pairs (i < j, unique) of alive samples sharing a band key, each with the one before it in its bucket."""
    idx = np.flatnonzero(alive)
    pairs = []
    for b in range(BANDS):
        order = idx[np.argsort(keys[idx, b], kind="stable")]  # in a bucket, by position
        same = np.flatnonzero(keys[order[1:], b] == keys[order[:-1], b])
        pairs.append(order[same] * len(keys) + order[same + 1])
    return np.stack(np.divmod(np.unique(np.concatenate(pairs)), len(keys)), axis=1)


def jaccard(a, b) -> float:
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


def find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def run(inp, out, rejects, report_path):
    rep = Report("dedup", rejects)
    # pass 1 (all cores, each reading its own part of the file): exact keys and band keys
    jobs, counts = _ranges(inp), []
    sources, exact, keys, multi = [], [np.zeros(0, np.uint64)], [np.zeros((0, BANDS), np.uint64)], [np.zeros(0, bool)]
    for part in parallel_map(_keys, jobs, chunksize=1):
        counts.append(sum(len(src) for src, *_ in part))
        for src, ex, bk, is_multi in part:
            sources += map(sys.intern, src)  # one string a source here too
            exact.append(ex)
            keys.append(bk)
            multi.append(is_multi)
    total = len(sources)
    exact, keys, multi = map(np.concatenate, (exact, keys, multi))
    _, first, inverse = np.unique(exact, return_index=True, return_inverse=True)
    exact_of = first[inverse]  # the first sample with the same words
    pairs = candidates(keys, exact_of == np.arange(total))
    # pass 2 (all cores): the shingle sets of the candidate rows; a pair whose Jaccard reaches VERIFY joins a cluster
    need = np.zeros(total, dtype=bool)
    need[pairs.ravel()] = True
    masks = np.split(need, np.cumsum(counts)[:-1])
    jobs = [(*j, m) for j, m in zip(jobs, masks) if m.any()]
    flat, sizes = zip((np.zeros(0, np.uint32), np.zeros(0, np.int64)), *parallel_map(_shingle_sets, jobs, chunksize=1))
    flat, at = np.concatenate(flat), np.concatenate(([0], np.cumsum(np.concatenate(sizes))))
    bounds = np.stack([at[:-1], at[1:]], axis=1)[np.cumsum(need)[pairs] - 1]  # each pair's two sets in flat
    threshold = np.where(multi[pairs[:, 1]], VERIFY["multi_turn"], VERIFY["qa"])
    parent = list(range(total))
    for (i, j), ((a, b), (c, e)), t in zip(pairs.tolist(), bounds.tolist(), threshold):
        if jaccard(flat[a:b], flat[c:e]) >= t:
            ri, rj = find(parent, i), find(parent, j)
            parent[max(ri, rj)] = min(ri, rj)
    kept_as = np.array([find(parent, i) for i in range(total)], dtype=np.int64)[exact_of]
    candidate = np.zeros(total, dtype=bool)
    candidate[pairs[:, 1]] = True
    # pass 3: keep the first of each cluster; kept lines are copied as they are
    with Writer(out) as w, open(inp, newline="\n") as lines:
        for idx, (line, root, cand) in enumerate(zip(lines, kept_as.tolist(), candidate.tolist())):
            source = sources[idx]
            rep.saw(source)
            if root == idx:
                w.write_raw(line)
                rep.keep(source)
                if cand:
                    rep.change(source, "candidate rejected by verification")
            else:
                row = json.loads(line)
                reason = "exact duplicate" if exact_of[idx] != idx else "near duplicate"
                rep.drop(source, reason, row, id=row["id"], duplicate_of=root)
    return rep.close(report_path)


def main(argv=None):
    step_main(__doc__, run, argv)


if __name__ == "__main__":
    main()
