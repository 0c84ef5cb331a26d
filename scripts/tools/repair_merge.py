"""Repair what mergekit leaves wrong in a merged Llama-3.1 model (runs in .venv/merge).

usage: repair_merge.py MERGED_DIR INSTRUCT_REF
mergekit copies config.json from the base model, so eos_token_id is the base's <|end_of_text|> alone,
and it writes no generation_config.json: the merged model would not stop at <|eot_id|>. Both are taken
from the Instruct model (a local directory or a hub id). Prints what changed as JSON.
"""

import argparse
import json
from pathlib import Path

from transformers import AutoConfig, GenerationConfig


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("merged_dir")
    ap.add_argument("instruct_ref", help="the Instruct model: a local directory or a hub id")
    a = ap.parse_args()
    out, ref = Path(a.merged_dir), a.instruct_ref
    instruct_eos = AutoConfig.from_pretrained(ref).eos_token_id
    cfg_file = out / "config.json"
    cfg = json.loads(cfg_file.read_text())
    before = cfg.get("eos_token_id")
    cfg["eos_token_id"] = instruct_eos
    cfg_file.write_text(json.dumps(cfg, indent=2) + "\n")
    had_gen = (out / "generation_config.json").exists()
    GenerationConfig.from_pretrained(ref).save_pretrained(out)
    print(
        json.dumps(
            {
                "eos_token_id": {"before": before, "after": instruct_eos},
                "generation_config": "replaced" if had_gen else "added",
            }
        )
    )


if __name__ == "__main__":
    main()
