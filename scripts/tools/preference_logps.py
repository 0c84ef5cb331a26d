"""How often a model prefers the chosen answer of preference pairs by log-likelihood (runs in .venv/eval).

usage: preference_logps.py MODEL_DIR PAIRS.jsonl     rows: {"prompt": [msgs], "chosen": [msgs], "rejected": [msgs]}
Prints JSON: pairs, prefers_chosen (chosen's summed completion log-probability above rejected's), as
OpenRLHF's DPO scores them: the chat template over prompt + answer, the answer's tokens only.
"""

import argparse
import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def completion_logp(model, tok, prompt, answer):
    head = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(prompt + answer, tokenize=False)
    n = len(tok(head, add_special_tokens=False)["input_ids"])
    ids = tok(full, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logps = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
    targets = ids[0, 1:]
    return logps[n - 1 :].gather(1, targets[n - 1 :, None]).sum().item()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("pairs")
    a = ap.parse_args()
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    rows = [json.loads(x) for x in Path(a.pairs).read_text().splitlines() if x.strip()]
    wins = sum(
        completion_logp(model, tok, r["prompt"], r["chosen"]) > completion_logp(model, tok, r["prompt"], r["rejected"])
        for r in rows
    )
    print(json.dumps({"pairs": len(rows), "prefers_chosen": wins}))


if __name__ == "__main__":
    main()
