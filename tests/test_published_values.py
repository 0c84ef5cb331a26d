"""Every hyper-parameter the paper or model card publishes appears once, with the published value
(../shared/reference/aloe_facts.md §2), and every value in the recipes carries its provenance tag."""
import json
import re

import pytest
import yaml

from conftest import ROOT

RECIPES = ROOT / "recipes"

# (file, dotted key, value) per recipe: aloe_facts §2.1 (SFT), §2.3 (merge), §2.4 (DPO), §3.1 (Medprompt).
COMMON = [
    ("sft", "num_epochs", 4), ("sft", "learning_rate", 2e-5), ("sft", "lr_scheduler", "cosine"),
    ("sft", "warmup_steps", 100), ("sft", "sequence_len", 16384), ("sft", "optimizer", "adamw_torch"),
    ("sft", "micro_batch_size", 1), ("sft", "weight_decay", 0.0), ("sft", "gradient_checkpointing", True),
    ("sft", "flash_attention", True), ("sft", "plugins", ["axolotl.integrations.liger.LigerPlugin"]),
    ("recipe", "sft_total_batch", 128), ("merge", "merge_method", "dare_ties"),
    ("dpo", "args.data.max_len", 4096), ("dpo", "args.model.beta", 0.1), ("dpo", "args.train.max_epochs", 1),
    ("dpo", "args.ds.zero_stage", 3), ("dpo", "stages.0.args.adam.lr", 2e-7), ("dpo", "stages.0.chunks", 5),
    ("dpo", "stages.1.args.adam.lr", 1e-7),
    ("medprompt", "embedding_model", "Salesforce/SFR-Embedding-Mistral"), ("medprompt", "k", 5),
    ("medprompt", "ensembles", 20), ("medprompt", "choice_shuffle", True), ("medprompt", "reranker", None),
]
PUBLISHED = {
    "aloe-beta-8b": COMMON + [("sft", "base_model", "meta-llama/Llama-3.1-8B"), ("recipe", "hardware.sft.gpus", 32),
                              ("recipe", "hardware.dpo.gpus", 16), ("dpo", "args.train.batch_size", 128),
                              ("merge", "models.1.model", "meta-llama/Llama-3.1-8B-Instruct")],
    "aloe-beta-70b": COMMON + [("sft", "base_model", "meta-llama/Llama-3.1-70B"),
                               ("recipe", "hardware.sft.gpus", 64), ("recipe", "hardware.dpo.gpus", 100),
                               ("dpo", "args.train.batch_size", 100),
                               ("merge", "models.1.model", "meta-llama/Llama-3.1-70B-Instruct")],
}


def get(d, dotted):
    """Walk a dotted key; dpo args keys themselves contain dots (`adam.lr`)."""
    parts = dotted.split(".")
    while parts:
        for n in range(len(parts), 0, -1):
            k = ".".join(parts[:n])
            key = int(k) if isinstance(d, list) and k.isdigit() else k
            if (isinstance(d, dict) and key in d) or (isinstance(d, list) and isinstance(key, int)):
                d, parts = d[key], parts[n:]
                break
        else:
            raise KeyError(dotted)
    return d


def key_names(d):
    """Every mapping key at any depth (dpo's `train.batch_size` is one key)."""
    if isinstance(d, dict):
        for k, v in d.items():
            yield k
            yield from key_names(v)
    elif isinstance(d, list):
        for v in d:
            yield from key_names(v)


@pytest.mark.parametrize("recipe", sorted(PUBLISHED))
def test_published_values_match_and_appear_once(recipe):
    files = {p.stem: yaml.safe_load(p.read_text()) for p in (RECIPES / recipe).glob("*.yaml")}
    for stem, key, value in PUBLISHED[recipe]:
        assert get(files[stem], key) == value, (recipe, stem, key)
        leaf = key.split("args.")[-1] if "args." in key else key.split(".")[-1]
        holders = sorted({s for s, d in files.items() if leaf in set(key_names(d))})
        # per-stage or per-model keys recur by design; merge.yaml's base_model is the merge base (a choice)
        if leaf not in ("gpus", "model", "adam.lr", "chunks", "base_model"):
            assert holders == [stem], f"{leaf} is set in {holders}, expected only {stem}.yaml"


def test_zero3_is_in_the_one_shared_deepspeed_config():
    ds = json.loads((RECIPES / "deepspeed/zero3_bf16.json").read_text())
    assert ds["zero_optimization"]["stage"] == 3
    for recipe in PUBLISHED:
        assert yaml.safe_load((RECIPES / recipe / "sft.yaml").read_text())["deepspeed"] == \
            "recipes/deepspeed/zero3_bf16.json"


VALUE_LINE = re.compile(r"^\s*(- )?[\w.]+:\s+[^#\s]")
UNTAGGED_OK = {"ds_type", "field_messages", "path", "name", "released_as", "base_config", "files", "output_dir",
               "dataset_prepared_path",
               "data.chosen_key", "data.rejected_key", "sft", "merge", "dpo", "- medqa_train", "- medmcqa_train"}


@pytest.mark.parametrize("recipe", sorted(PUBLISHED))
def test_every_value_says_where_it_comes_from(recipe):
    missing = []
    for f in sorted((RECIPES / recipe).glob("*.yaml")):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            key = line.strip().lstrip("- ").split(":")[0]
            if VALUE_LINE.match(line) and key not in UNTAGGED_OK and not re.search(r"\[(P|D|C)\]", line):
                if f.name == "eval.yaml" and line.strip().startswith("- "):
                    continue
                missing.append(f"{f.name}:{n}: {line.strip()}")
    assert not missing, "values without a [P]/[D]/[C] tag:\n" + "\n".join(missing)
