"""Build the tiny model kit offline (runs in .venv/eval; deterministic, seconds): two families.

usage: build_tiny_kit.py OUT_DIR
Llama: OUT_DIR/base (stands for meta-llama/Llama-3.1-8B: eos <|end_of_text|>) and OUT_DIR/instruct (stands for
Llama-3.1-8B-Instruct: base weights plus seeded noise, briefly tuned to answer multiple-choice questions as
"... Answer: [X]", eos list end_of_text/eom/eot); a byte-level BPE tokenizer with the Llama-3 special tokens
and a Llama-3.1-style chat template.
Qwen: OUT_DIR/qwen-base and OUT_DIR/qwen-instruct, the same for Qwen/Qwen2.5-7B and -Instruct: a Qwen2 model,
Qwen2's pre-tokenizer, the special tokens <|endoftext|> <|im_start|> <|im_end|>, no BOS, pad = <|endoftext|>,
eos <|endoftext|> (base) and <|im_end|> (instruct; generation eos <|im_end|>, <|endoftext|>), Qwen2.5's
ChatML template (without its tool branch).
head_dim is 32 in both because vLLM's CPU attention rejects 16.
"""

import argparse
import json
import random
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

LLAMA_SPECIALS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
    "<|reserved_special_token_2|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
]
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
VOCAB = 1024
LLAMA_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)  # the Llama 3 pre-tokenizer pattern
QWEN_SPLIT = LLAMA_SPLIT.replace(r"\p{N}{1,3}", r"\p{N}")  # Qwen2 splits digits one by one
QWEN_TEMPLATE = """{%- if messages[0]['role'] == 'system' %}
{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
{%- else %}
{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}{%- if not (message.role == 'system' and loop.first) %}
{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
"""
LLAMA_TEMPLATE = """{{- bos_token }}
{%- if not date_string is defined %}{%- set date_string = "26 Jul 2024" %}{%- endif %}
{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content']|trim %}{%- set messages = messages[1:] %}
{%- else %}{%- set system_message = "" %}{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- for message in messages %}
{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}
"""

WORDS = {
    "organ": "heart lung liver kidney brain skin bone blood stomach colon pancreas thyroid".split(),
    "cond": "hypertension diabetes asthma pneumonia anemia sepsis cirrhosis migraine arthritis hepatitis".split(),
    "drug": "aspirin metformin insulin amoxicillin warfarin heparin lisinopril atorvastatin ibuprofen".split(),
    "sym": "fever cough pain fatigue nausea vomiting dyspnea headache rash swelling dizziness".split(),
}
SENTENCES = [
    "A {n}-year-old patient presents with {sym} and {sym}. Which is the most likely diagnosis?",
    "The {organ} is affected in {cond}. The first-line treatment is {drug}.",
    "Which of the following drugs treats {cond}? A. {drug} B. {drug} C. {drug} D. {drug}",
    "Let's think step by step. {cond} damages the {organ}, so {drug} is preferred. Answer: [{L}]",
    "Patients with {cond} often report {sym}, {sym} and {sym}.",
    "You are an expert medical assistant named Aloe. Question: Options: system user assistant",
]


def corpus(n=4000, seed=0):
    rnd = random.Random(seed)
    for _ in range(n):
        s = rnd.choice(SENTENCES)
        while "{" in s:
            i = s.index("{")
            k = s[i + 1 : s.index("}", i)]
            v = str(rnd.randint(1, 95)) if k == "n" else rnd.choice("ABCD") if k == "L" else rnd.choice(WORDS[k])
            s = s[:i] + v + s[i + len(k) + 2 :]
        yield s


def build_tokenizer(specials, split, bos=None):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB - len(specials), show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(list(corpus()), trainer=trainer)
    tok.add_special_tokens(specials)
    if bos:  # Llama prepends <|begin_of_text|>; Qwen adds no special token
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos}:1 $B:1", special_tokens=[(bos, tok.token_to_id(bos))]
        )
    return tok


def cot_chats(n=256, seed=1):
    """Chats in the Medprompt answer format: a question with lettered options, then a short reasoning
    ending in 'Answer: [X]'. Training the "instruct" model on them gives it the answer format (not knowledge)."""
    rnd = random.Random(seed)
    for _ in range(n):
        cond = rnd.choice(WORDS["cond"])
        opts = rnd.sample(WORDS["drug"], 4)
        letter = rnd.choice("ABCD")
        body = "\n".join(f"{L}. {o}" for L, o in zip("ABCD", opts))
        yield [
            {"role": "user", "content": f"Question: Which drug treats {cond}?\nOptions:\n{body}"},
            {
                "role": "assistant",
                "content": f"Let's think step by step. {cond} affects the "
                f"{rnd.choice(WORDS['organ'])}. Answer: [{letter}]",
            },
        ]


def instruction_tune(model, tok, steps=120, lr=3e-3):
    """A few hundred milliseconds of full fine-tuning on cot_chats (loss on every token)."""
    torch.manual_seed(0)
    texts = [tok.apply_chat_template(c, tokenize=False) for c in cot_chats()]
    batch = tok(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        i = torch.arange(step * 16, step * 16 + 16) % len(texts)
        loss = model(input_ids=batch["input_ids"][i], attention_mask=batch["attention_mask"][i], labels=labels[i]).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    return loss.item()


def llama(tok):
    ids = {t: tok.token_to_id(t) for t in ("<|begin_of_text|>", "<|end_of_text|>", "<|eom_id|>", "<|eot_id|>")}
    cfg = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        max_position_embeddings=131072,
        rms_norm_eps=1e-5,
        bos_token_id=ids["<|begin_of_text|>"],
        tie_word_embeddings=False,
        rope_parameters={
            "rope_type": "llama3",
            "rope_theta": 500000.0,
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        },
    )
    instruct_eos = [ids["<|end_of_text|>"], ids["<|eom_id|>"], ids["<|eot_id|>"]]
    tokens = {"bos_token": "<|begin_of_text|>", "pad_token": "<|finetune_right_pad_id|>", "model_max_length": 131072}
    return (
        LlamaForCausalLM,
        cfg,
        {"bos_token_id": ids["<|begin_of_text|>"]},
        LLAMA_TEMPLATE,
        tokens,
        {"": (None, ids["<|end_of_text|>"], "<|end_of_text|>"), "instruct": (2, instruct_eos, "<|eot_id|>")},
    )


def qwen(tok):
    ids = {t: tok.token_to_id(t) for t in QWEN_SPECIALS}
    end, im_end = ids["<|endoftext|>"], ids["<|im_end|>"]
    cfg = Qwen2Config(
        vocab_size=tok.get_vocab_size(),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=32768,  # head_dim 64 / 2 = 32
        rms_norm_eps=1e-6,
        bos_token_id=end,
        tie_word_embeddings=False,
        use_sliding_window=False,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
    )
    tokens = {"bos_token": None, "pad_token": "<|endoftext|>", "model_max_length": 32768}
    return (
        Qwen2ForCausalLM,
        cfg,
        {"bos_token_id": end, "pad_token_id": end},
        QWEN_TEMPLATE,
        tokens,
        {"": (None, end, "<|endoftext|>"), "instruct": (2, [im_end, end], "<|im_end|>")},
    )


# family: (output prefix, special tokens, pre-tokenizer pattern, BOS the tokenizer adds, model builder)
FAMILIES = {
    "llama": ("", LLAMA_SPECIALS, LLAMA_SPLIT, "<|begin_of_text|>", llama),
    "qwen": ("qwen-", QWEN_SPECIALS, QWEN_SPLIT, None, qwen),
}


def build(out: Path, family: str) -> dict:
    prefix, specials, split, bos, make = FAMILIES[family]
    tok = build_tokenizer(specials, split, bos)
    model_cls, cfg, gen_ids, template, tokens, variants = make(tok)
    torch.manual_seed(0)
    base_sd = model_cls(cfg).state_dict()
    metrics = {}
    for variant, (noise_seed, eos, eos_token) in variants.items():
        model = model_cls(cfg)
        sd = {k: v.clone() for k, v in base_sd.items()}
        if noise_seed is not None:  # "instruct" = base + a seeded task vector
            g = torch.Generator().manual_seed(noise_seed)
            sd = {k: v + 0.02 * torch.randn(v.shape, generator=g) for k, v in sd.items()}
        model.load_state_dict(sd)
        hf = PreTrainedTokenizerFast(
            tokenizer_object=tok, eos_token=eos_token, clean_up_tokenization_spaces=False, **tokens
        )
        hf.chat_template = template
        if variant == "instruct":  # an instruct model answers in a format: it has seen instruction data
            metrics["instruct_tuning_loss"] = round(instruction_tune(model, hf), 3)
            metrics["eos_instruct"] = eos
        model.config.eos_token_id = eos
        model.generation_config = GenerationConfig(
            eos_token_id=eos, do_sample=True, temperature=0.6, top_p=0.9, **gen_ids
        )
        name = prefix + (variant or "base")
        model.save_pretrained(out / name)
        hf.save_pretrained(out / name)
    return {"params": sum(v.numel() for v in base_sd.values()), "vocab": tok.get_vocab_size(), **metrics}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    out = Path(ap.parse_args().out_dir)
    print(json.dumps({family: build(out, family) for family in FAMILIES}))


if __name__ == "__main__":
    main()
