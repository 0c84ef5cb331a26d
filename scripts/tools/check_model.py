"""Load a model directory with transformers, generate, and compare its weights (runs in .venv/eval).

usage: check_model.py MODEL_DIR [--ref REF_DIR] [--force-eot-at N [--eot TOKEN]]
Exits 1 naming the tensors when a weight is NaN or infinite. Prints JSON: generated token count and text;
with --ref, how many tensors differ and the largest change; with --force-eot-at N, whether generation stops
when the turn terminator (--eot, default <|eot_id|>) is emitted at step N (the model's own generation_config
decides which tokens stop it).
"""

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessor, LogitsProcessorList


class ForceToken(LogitsProcessor):
    def __init__(self, token_id, at_step, prompt_len):
        self.token_id, self.at, self.prompt_len = token_id, at_step, prompt_len

    def __call__(self, input_ids, scores):
        if input_ids.shape[1] - self.prompt_len == self.at:
            scores = torch.full_like(scores, float("-inf"))
            scores[:, self.token_id] = 0.0
        return scores


def weights(d):
    out = {}
    for f in sorted(Path(d).glob("*.safetensors")):
        out.update({k: v.float() for k, v in load_file(f).items()})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model")
    ap.add_argument("--ref")
    ap.add_argument("--force-eot-at", type=int)
    ap.add_argument("--eot", default="<|eot_id|>", help="the turn terminator (Qwen: <|im_end|>)")
    a = ap.parse_args()
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32)
    bad = [k for k, v in weights(a.model).items() if not torch.isfinite(v).all()]
    if bad:  # a NaN or inf weight still loads and may even generate
        raise SystemExit(f"check_model: non-finite (NaN or inf) weights in {a.model}: {', '.join(bad)}")
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Which drug treats asthma?"}], tokenize=False, add_generation_prompt=True
    )
    ids = tok(prompt, add_special_tokens=False, return_tensors="pt")
    n_prompt, max_new = ids["input_ids"].shape[1], 12
    extra = {}
    if a.force_eot_at is not None:
        eot = tok.convert_tokens_to_ids(a.eot)
        extra["logits_processor"] = LogitsProcessorList([ForceToken(eot, a.force_eot_at, n_prompt)])
    torch.manual_seed(0)
    out = model.generate(**ids, max_new_tokens=max_new, do_sample=False, pad_token_id=tok.pad_token_id, **extra)
    new = out[0, n_prompt:]
    res = {
        "generated_tokens": int(new.shape[0]),
        "max_new_tokens": max_new,
        "text": tok.decode(new),
        "eos_token_id": model.generation_config.eos_token_id,
    }
    if a.force_eot_at is not None:
        res["stopped_at_eot"] = int(new.shape[0]) == a.force_eot_at + 1
    if a.ref:
        w, r = weights(a.model), weights(a.ref)
        common = sorted(set(w) & set(r))
        diffs = {k: (w[k] - r[k]).abs().max().item() for k in common if w[k].shape == r[k].shape}
        res.update(
            tensors=len(common),
            tensors_changed=sum(d > 0 for d in diffs.values()),
            max_abs_change=max(diffs.values()) if diffs else None,
        )
    print(json.dumps(res))


if __name__ == "__main__":
    main()
