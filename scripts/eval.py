"""Stage eval: lm-evaluation-harness in .venv/eval on a model (by default the DPO stage's final output).

Every setting is written down in the manifest and lm-eval's own results file (`--log_samples` always).
With --local, the tasks run on the data stage's local fixtures through the repository's task
definitions (recipes/tasks/aloe_local_*.yaml), which reuse lm-eval's own prompts and metrics.

  python -m scripts.eval --profile cpu-tiny --local
  python -m scripts.eval --recipe recipes/aloe-beta-8b --model HPAI-BSC/Llama3.1-Aloe-Beta-8B --limit 50
"""
import json
import sys
from pathlib import Path

from scripts.lib import cli, venv
from scripts.lib import manifest as mf
from scripts.lib import recipe as rc

TASKS = rc.ROOT / "recipes" / "tasks"


def render_local_tasks(data_outputs: dict, dest: Path) -> list:
    """Copy the local task templates next to the run, pointing each at its fixture file."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "aloe_local_utils.py").write_text((TASKS / "aloe_local_utils.py").read_text())
    names = []
    for key, out in sorted(data_outputs.items()):
        if key.startswith("eval_"):
            name = f"aloe_local_{key[len('eval_'):]}"
            text = (TASKS / f"{name}.yaml").read_text().replace("{data_file}", out["path"])
            (dest / f"{name}.yaml").write_text(text)
            names.append(name)
    return names


def main(argv=None):
    ap = cli.stage_parser(__doc__)
    ap.add_argument("--model", help="hub id or path (default: the dpo stage's final model)")
    ap.add_argument("--local", action="store_true", help="evaluate on the data stage's local fixtures")
    ap.add_argument("--limit", type=int, help="documents per task (quick looks; not comparable to the paper)")
    a = ap.parse_args(argv)
    r = cli.load(a)
    e = r.files["eval"]
    run = cli.run_dir(a, r)
    model = {"path": a.model, "sha256": None} if a.model else mf.read_done(run / "dpo", "eval")["outputs"]["model"]
    inputs = {"model": model}
    if a.local:
        inputs["data"] = mf.read_done(run / "data", "eval")["outputs"]
    settings = {k: e[k] for k in ("num_fewshot", "apply_chat_template", "batch_size", "dtype", "seed")}
    settings.update(limit=a.limit, local=a.local, tasks=None if a.local else e["tasks"])
    st = mf.Stage(run / "eval", "eval", cli.recipe_info(r, "eval", settings), inputs, a.force,
                  seed=e["seed"])
    if st.skip():
        return 0
    with st:
        tasks = render_local_tasks(inputs["data"], st.partial / "tasks") if a.local else e["tasks"]
        cmd = ["lm-eval", "run", "--model", "hf",
               "--model_args", f"pretrained={model['path']},dtype={e['dtype']}",
               "--device", "cuda" if venv.has_cuda() else "cpu", "--batch_size", e["batch_size"],
               "--tasks", ",".join(tasks), "--num_fewshot", e["num_fewshot"], "--seed", e["seed"],
               "--output_path", st.partial / "lm_eval", "--log_samples",
               *(["--include_path", st.partial / "tasks"] if a.local else []),
               *(["--apply_chat_template"] if e["apply_chat_template"] else []),
               *(["--limit", a.limit] if a.limit else [])]
        print(f"[eval] $ {' '.join(map(str, cmd))}", flush=True)
        if venv.run("eval", cmd, log=st.dir / "log.txt").returncode:
            raise SystemExit(f"[eval] lm-eval failed; see {st.dir / 'log.txt'}")
        results = json.loads(sorted((st.partial / "lm_eval").rglob("results_*.json"))[-1].read_text())
        st.publish("lm_eval", st.partial / "lm_eval")
        if a.local:
            st.publish("tasks", st.partial / "tasks")
        st.m["tools"] = venv.tool_versions("eval", ["lm_eval", "torch", "transformers"])
        st.m["metrics"] = {t: {"acc": v.get("acc,none"), "acc_stderr": v.get("acc_stderr,none")}
                           for t, v in results["results"].items()}
    print(f"[eval] done: {json.dumps(st.m['metrics'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
