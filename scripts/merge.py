"""Stage merge: DARE-TIES of the SFT model with Llama-3.1-Instruct, `mergekit-yaml` in .venv/merge.

Takes the SFT model from the sft manifest, runs mergekit with the recipe's fixed seed (recipe.yaml
merge_seed), then repairs what mergekit leaves wrong: config.json's eos_token_id (copied from the base
model) and the missing generation_config.json, both taken from the Instruct model.

  python -m scripts.merge --recipe recipes/aloe-beta-8b
  python -m scripts.merge --profile cpu-tiny
"""

import json
import sys
from functools import partial

import yaml

from scripts.core import AloeError
from scripts.lib import checks, cli, driver, placeholders, stages, venv
from scripts.lib import manifest as mf


class Merge(driver.Stage):
    name = "merge"

    def prepare(self, ctx):
        r = ctx.recipe
        inputs = driver.inputs("merge", ctx.runs, r.name)
        paths = placeholders.placeholders("merge", r, inputs)  # merge.yaml's SFT entry -> the SFT output
        cfg = placeholders.fill(r.files["merge"], paths, r.rel("merge"), required=paths)
        sft = inputs["sft"]["path"]
        inputs |= {f"model_{i}": mf.model_input(m["model"]) for i, m in enumerate(cfg["models"]) if m["model"] != sft}
        inputs["base"] = mf.model_input(cfg["base_model"])
        numbers = dict(seed=int(r.files["recipe"]["merge_seed"]), world_size=r.world("merge"))
        return driver.Prepared(
            stages.folder("merge", ctx.runs, r.name), driver.recipe_info(r, "merge", cfg), inputs, "merge",
            code=(venv.TOOLS / "repair_merge.py",), numbers=numbers, tools=("mergekit", "torch", "transformers"),
            own={"cfg": cfg},
        )  # fmt: skip

    def check(self, ctx, p):
        cli.fail_on(checks.validate([ctx.recipe], ("merge",))[0])

    def run(self, ctx, p, b):
        cfg = p.own["cfg"]
        instruct = cfg["tokenizer"]["source"] if isinstance(cfg.get("tokenizer"), dict) else cfg["models"][-1]["model"]
        cfg_path = b.dir / "mergekit.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        log = b.dir / "log.txt"
        cmd = ["mergekit-yaml", cfg_path, b.partial / "model", "--random-seed", p.numbers["seed"],
               *(["--cuda"] if venv.has_cuda() else [])]  # fmt: skip
        print(f"[merge] $ {' '.join(map(str, cmd))}", flush=True)
        if venv.run("merge", cmd, log=log).returncode:
            raise AloeError(f"[merge] mergekit failed; see {log}")
        fix = venv.run("merge", ["repair_merge.py", b.partial / "model", instruct], capture=True)
        if fix.returncode:
            raise AloeError(f"[merge] repair failed:\n{fix.stderr[-2000:]}")
        return {"repaired": json.loads(fix.stdout.strip().splitlines()[-1])}

    def summary(self, ctx, p, m):
        return f"{p.folder} ({m['metrics']['repaired']})"

    def figure(self, m):
        fixed = m["metrics"].get("repaired", {})
        eos = fixed.get("eos_token_id", {})
        return f"eos {eos.get('before')} -> {eos.get('after')}, generation_config {fixed.get('generation_config')}"


STAGE = Merge()

main = partial(driver.main, STAGE)  # the command line: the one stage driver


if __name__ == "__main__":
    sys.exit(main())
