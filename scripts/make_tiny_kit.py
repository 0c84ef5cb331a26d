"""Build the tiny-model kit (runs/tiny-kit): a Llama-3.1-shaped base and "instruct" model with a Llama-3
tokenizer and chat template (base, instruct), and a Qwen2.5-shaped pair with Qwen's tokenizer layout and
ChatML template (qwen-base, qwen-instruct); offline, deterministic, in seconds. Runs the builder in .venv/eval."""

import json
import sys
from functools import partial

from scripts.core import AloeError, sha256_path
from scripts.lib import driver, venv

BUILDER = venv.TOOLS / "build_tiny_kit.py"


class TinyKit(driver.Stage):
    name = "tiny-kit"

    def prepare(self, ctx):
        recipe = {"path": str(BUILDER.relative_to(venv.ROOT)), "sha256": sha256_path(BUILDER)}
        # the plan's kit (make smoke / make reproduce), else <runs>/tiny-kit
        return driver.Prepared(ctx.recipe.kit, recipe, {}, "eval", code=(BUILDER,), numbers={"seed": 0},
                               tools=("torch", "transformers", "tokenizers"))  # fmt: skip

    def run(self, ctx, p, b):
        res = venv.run("eval", ["build_tiny_kit.py", b.partial], capture=True)
        if res.returncode:
            raise AloeError(f"tiny kit build failed:\n{res.stderr[-3000:]}")
        return json.loads(res.stdout.strip().splitlines()[-1])

    def summary(self, ctx, p, m):
        return f"{p.folder}: {', '.join(m['outputs'])}"

    def figure(self, m):
        x = m["metrics"]
        return "; ".join(f"{family} {v.get('params')} params, vocab {v.get('vocab')}" for family, v in x.items())


STAGE = TinyKit()

main = partial(driver.main, STAGE)  # the command line: the one stage driver


if __name__ == "__main__":
    sys.exit(main())
