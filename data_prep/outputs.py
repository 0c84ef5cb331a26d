"""Step h: the training-ready files the recipes read.

  sft.jsonl              {"messages": [...]}: axolotl `type: chat_template`, `field_messages: messages`
  dpo/chunk_{i}.jsonl    {"prompt", "chosen", "rejected"} message lists: OpenRLHF `--data.prompt_key prompt`
  dpo/redteam.jsonl      the stage-2 set, same schema
The DPO set is split into 5 disjoint chunks that cover it, drawn by a seeded permutation; their sizes
differ by at most one pair (the paper's 251,956 pairs give chunks of 50,391 and 50,392).

  python -m data_prep.outputs --in mixed.jsonl --out-dir DIR [--chunks 5] [--seed 0]
"""

import argparse
import json
import random
from pathlib import Path

from .io import Writer, read_jsonl


def chunk_of(n: int, chunks: int, seed: int) -> list:
    """chunk index of each of n rows: a seeded permutation dealt round-robin."""
    order = list(range(n))
    random.Random(f"{seed}:dpo-chunks").shuffle(order)
    assign = [0] * n
    for rank, i in enumerate(order):
        assign[i] = rank % chunks
    return assign


def run(inp, out_dir, chunks=5, seed=0):
    out_dir = Path(out_dir)
    n_dpo = sum(1 for _, row, _ in read_jsonl(inp) if row["block"] == "dpo")
    assign = chunk_of(n_dpo, chunks, seed)
    writers = [Writer(out_dir / "dpo" / f"chunk_{i}.jsonl") for i in range(chunks)]
    sft, red = Writer(out_dir / "sft.jsonl"), Writer(out_dir / "dpo" / "redteam.jsonl")
    k = 0
    for _, row, _ in read_jsonl(inp):
        if row["block"] in ("dpo", "redteam"):
            pref = {key: row[key] for key in ("prompt", "chosen", "rejected")}
            if row["block"] == "redteam":
                red.write(pref)
            else:
                writers[assign[k]].write(pref)
                k += 1
        else:
            sft.write({"messages": row["messages"]})
    counts = {"sft": sft.n, "redteam": red.n, "dpo_chunks": [w.n for w in writers]}
    for w in (*writers, sft, red):
        w.__exit__(None)
    return counts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--in", dest="inp", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--chunks", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    print(json.dumps(run(a.inp, a.out_dir, a.chunks, a.seed)))


if __name__ == "__main__":
    main()
