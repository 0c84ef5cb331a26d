"""Resumable generation: a requests JSONL in, one completion per request id out, in a stage environment.

  python -m evals.run --config gen.json        (written by the stage scripts; keys below)

Config keys: requests (JSONL of {id, messages, seed}), out (JSONL, appended), backend (hf | vllm | openai),
model, dtype, temperature, top_p, max_tokens, batch_size, flush (requests per write), base_url, gpus.
Requests whose id is already in `out` are not generated again, so a killed run continues where it stopped.
Each output line: {id, text, prompt_tokens, completion_tokens}.
"""

import argparse
import json

from medprompt import generate
from scripts import core


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    cfg = json.loads(open(ap.parse_args(argv).config).read())
    done = {r["id"] for r in core.resume_jsonl(cfg["out"])}
    todo = [r for r in map(json.loads, open(cfg["requests"]).read().splitlines()) if r["id"] not in done]
    print(f"[evals.run] {cfg['model']}: {len(done)} done, {len(todo)} to generate", flush=True)
    if not todo:
        return 0
    gen = generate.make(
        cfg["backend"],
        cfg["model"],
        dtype=cfg["dtype"],
        batch_size=cfg["batch_size"],
        temperature=cfg["temperature"],
        top_p=cfg["top_p"],
        base_url=cfg.get("base_url"),
        tensor_parallel_size=cfg.get("gpus", 1),
    )
    for b in range(0, len(todo), cfg["flush"]):
        chunk = todo[b : b + cfg["flush"]]
        outs = gen.generate([r["messages"] for r in chunk], [r["seed"] for r in chunk], cfg["max_tokens"])
        core.append_jsonl(
            cfg["out"],
            [
                {
                    "id": r["id"],
                    "text": c.text,
                    "prompt_tokens": c.prompt_tokens,
                    "completion_tokens": c.completion_tokens,
                }
                for r, c in zip(chunk, outs, strict=True)
            ],
        )
        print(f"[evals.run] {b + len(chunk)}/{len(todo)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
