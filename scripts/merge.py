"""Stage merge: DARE-TIES of the SFT model with Llama-3.1-Instruct, `mergekit-yaml` in .venv/merge.

Takes the SFT model from the sft manifest, runs mergekit with the recipe's fixed seed (recipe.yaml
merge_seed), then repairs what mergekit leaves wrong: config.json's eos_token_id (copied from the base
model) and the missing generation_config.json, both taken from the Instruct model.

  python -m scripts.merge --recipe recipes/aloe-beta-8b
  python -m scripts.merge --profile cpu-tiny
"""

import copy
import json
import sys

import yaml

from scripts.lib import checks, cli, venv
from scripts.lib import manifest as mf


def render(r, sft_model: str) -> dict:
    """merge.yaml with the SFT entry (the one naming a runs/ path) pointed at the real SFT output."""
    cfg = copy.deepcopy(r.files["merge"])
    for raw_entry, entry in zip(r.raw["merge"]["models"], cfg["models"]):
        if str(raw_entry["model"]).startswith("runs/"):
            entry["model"] = sft_model
    return cfg


def main(argv=None):
    a = cli.stage_parser(__doc__).parse_args(argv)
    r = cli.load(a)
    run = cli.run_dir(a, r)
    sft = mf.read_done(run / "sft", "merge")["outputs"]["model"]
    cfg = render(r, sft["path"])
    seed = int(r.files["recipe"]["merge_seed"])
    instruct = cfg["tokenizer"]["source"] if isinstance(cfg.get("tokenizer"), dict) else cfg["models"][-1]["model"]
    inputs = {
        "sft": sft,
        **{f"model_{i}": mf.model_input(m["model"]) for i, m in enumerate(cfg["models"]) if m["model"] != sft["path"]},
        "base": mf.model_input(cfg["base_model"]),
    }
    st = mf.Stage(
        run / "merge",
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
        st.publish("model", st.partial / "model")
        st.m["tools"] = venv.tool_versions("merge", ["mergekit", "torch", "transformers"])
        st.m["metrics"] = {"repaired": json.loads(fix.stdout.strip().splitlines()[-1])}
    print(f"[merge] done: {st.dir / 'model'} ({st.m['metrics']['repaired']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
