"""Build the tiny-model kit (runs/tiny-kit): a Llama-3.1-shaped base and "instruct" model with a Llama-3
tokenizer and chat template (base, instruct), and a Qwen2.5-shaped pair with Qwen's tokenizer layout and
ChatML template (qwen-base, qwen-instruct); offline, deterministic, in seconds. Runs the builder in .venv/eval."""

import json
import sys

from scripts import core
from scripts.core import sha256_path
from scripts.lib import cli, stages, venv
from scripts.lib.manifest import Stage


def main(argv=None):
    ap = cli.stage_parser(__doc__)
    a = ap.parse_args(argv)
    builder = venv.TOOLS / "build_tiny_kit.py"
    kit = cli.load(a).kit  # the plan's kit (make smoke / make reproduce), else <runs>/tiny-kit
    recipe = {"path": str(builder.relative_to(core.ROOT)), "sha256": sha256_path(builder)}
    st = Stage(kit, "tiny-kit", recipe, {}, a.force, seed=0, env="eval", code=[venv.TOOLS / "build_tiny_kit.py"])
    if st.skip():
        return 0
    with st:
        res = venv.run("eval", ["build_tiny_kit.py", st.partial], capture=True)
        if res.returncode:
            raise SystemExit(f"tiny kit build failed:\n{res.stderr[-3000:]}")
        stages.publish_all(st)
        st.m["metrics"] = json.loads(res.stdout.strip().splitlines()[-1])
        st.m["tools"] = venv.tool_versions("eval", ["torch", "transformers", "tokenizers"])
    print(f"[tiny-kit] {kit}: {', '.join(st.m['outputs'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
