"""Stage merge: DARE-TIES of the SFT model with Llama-3.1-Instruct, `mergekit-yaml` in .venv/merge.

Takes the SFT model from the sft manifest, runs mergekit with the recipe's fixed seed (recipe.yaml
merge_seed), then repairs what mergekit leaves wrong: config.json's eos_token_id (copied from the base
model) and the missing generation_config.json, both taken from the Instruct model.

  python -m scripts.merge --recipe recipes/aloe-beta-8b
  python -m scripts.merge --profile cpu-tiny
"""

import json
import sys

import yaml

from scripts.lib import checks, cli, placeholders, stages, venv
from scripts.lib import manifest as mf


def main(argv=None):
    a = cli.stage_parser(__doc__).parse_args(argv)
    r = cli.load(a)
    inputs = stages.inputs("merge", a.runs, r.name)
    paths = placeholders.placeholders("merge", r, inputs)  # merge.yaml's SFT entry -> the SFT output
    cfg = placeholders.fill(r.files["merge"], paths, r.rel("merge"), required=paths)
    seed = int(r.files["recipe"]["merge_seed"])
    instruct = cfg["tokenizer"]["source"] if isinstance(cfg.get("tokenizer"), dict) else cfg["models"][-1]["model"]
    sft = inputs["sft"]["path"]
    inputs |= {f"model_{i}": mf.model_input(m["model"]) for i, m in enumerate(cfg["models"]) if m["model"] != sft}
    inputs["base"] = mf.model_input(cfg["base_model"])
    st = mf.Stage(
        stages.folder("merge", a.runs, r.name),
        "merge",
        cli.recipe_info(r, "merge", cfg),
        inputs,
        a.force,
        seed=seed,
        env="merge",
        code=[venv.TOOLS / "repair_merge.py"],
        world_size=r.world("merge"),
    )
    if st.skip():
        return 0
    cli.fail_on(checks.validate([r], ("merge",))[0])
    with st:
        cfg_path = st.dir / "mergekit.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        log = st.dir / "log.txt"
        cmd = [
            "mergekit-yaml",
            cfg_path,
            st.partial / "model",
            "--random-seed",
            seed,
            *(["--cuda"] if venv.has_cuda() else []),
        ]
        print(f"[merge] $ {' '.join(map(str, cmd))}", flush=True)
        if venv.run("merge", cmd, log=log).returncode:
            raise SystemExit(f"[merge] mergekit failed; see {log}")
        fix = venv.run("merge", ["repair_merge.py", st.partial / "model", instruct], capture=True)
        if fix.returncode:
            raise SystemExit(f"[merge] repair failed:\n{fix.stderr[-2000:]}")
        stages.publish_all(st)
        st.m["tools"] = venv.tool_versions("merge", ["mergekit", "torch", "transformers"])
        st.m["metrics"] = {"repaired": json.loads(fix.stdout.strip().splitlines()[-1])}
    print(f"[merge] done: {st.dir} ({st.m['metrics']['repaired']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
