"""The turns of axolotl's prepared SFT dataset and what of each is trained (runs in .venv/sft).

usage: sft_turns.py PREPARED_DIR TOKENIZER_DIR
Prints JSON {"rows", "turns": [{"row", "role", "trained_tokens", "eot_trained"}]}: every Llama-3 turn
(<|start_header_id|>role<|end_header_id|> ... <|eot_id|>) with how many of its tokens carry a label and
whether its closing <|eot_id|> does (axolotl marks untrained tokens with label -100).
"""

import argparse
import json
from pathlib import Path

import datasets
from transformers import AutoTokenizer


def turns(ids, labels, tok):
    start, end, eot = (tok.convert_tokens_to_ids(t) for t in ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"))
    out, i = [], 0
    while start in ids[i:]:
        s = ids.index(start, i)
        e = ids.index(end, s)
        close = ids.index(eot, e) if eot in ids[e:] else len(ids) - 1
        out.append(
            {
                "role": tok.decode(ids[s + 1 : e]),
                "trained_tokens": sum(x != -100 for x in labels[s : close + 1]),
                "eot_trained": ids[close] == eot and labels[close] == eot,
            }
        )
        i = close + 1
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prepared")
    ap.add_argument("tokenizer")
    a = ap.parse_args()
    tok = AutoTokenizer.from_pretrained(a.tokenizer)
    found = [p.parent for p in Path(a.prepared).rglob("dataset_info.json")]
    rows = datasets.concatenate_datasets([datasets.load_from_disk(str(p)) for p in found])
    out = [{"row": n, **t} for n, r in enumerate(rows) for t in turns(list(r["input_ids"]), list(r["labels"]), tok)]
    print(json.dumps({"rows": len(rows), "turns": out}))


if __name__ == "__main__":
    main()
