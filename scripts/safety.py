"""Stage safety (`make eval SUITE=safety`): S-Eval attack prompts answered by the model under test, each answer
judged by Llama Guard 3 8B, and the attack success rate per attack style (P-BETA Table 13) and per risk
dimension (Table 14) with counts and 95% Wilson intervals.

Prompts: the public English attack set (evals/seval.py), PER_CELL per (style, dimension) cell, seeded. The model
answers each prompt as a single user turn with the recipe's sampling (medprompt.yaml temperature/top_p, the model
card's) and the eval stage's token budget (eval.yaml max_gen_toks); the judge decodes greedily. With --local
(`FIXTURES=1`) the prompts are evals/fixtures.py's; a profile's `models` map turns hub ids (the model, the judge)
into local stand-ins, so that `PROFILE=cpu-tiny MODEL=meta-llama/Llama-3.1-8B-Instruct` runs the tiny instruct model.
Answers and verdicts are appended per prompt as they finish; a rerun with the same settings resumes.

  python -m scripts.safety --model HPAI-BSC/Llama3.1-Aloe-Beta-8B --backend vllm
  python -m scripts.safety --profile cpu-tiny --local --model meta-llama/Llama-3.1-8B-Instruct
Outputs: <stage>/out/{answers,judge}.jsonl, per_prompt.jsonl, asr.md, results/results_safety.json (lm-eval's
shape: `make verify SUITE=safety` reads it).
"""

import argparse
import json
import sys
from functools import partial
from pathlib import Path

from evals import asr, fixtures, llama_guard, seval
from scripts import core
from scripts.core import AloeError, markdown, table
from scripts.lib import cli, driver, judged, venv
from scripts.lib import manifest as mf


class Safety(driver.Stage):
    name = "safety"

    def options(self, ap):
        ap.add_argument("--model", help="hub id or path (default: the recipe run's final DPO model)")
        ap.add_argument(
            "--suite", choices=("safety",), default="safety", help=argparse.SUPPRESS
        )  # `make eval` passes it
        ap.add_argument("--backend", choices=("hf", "vllm"), default="hf")
        ap.add_argument("--local", action="store_true", help="the fixture prompts (evals/fixtures.py)")
        ap.add_argument("--prompts", help="an S-Eval attack JSONL already on disk (default: fetched from the hub)")
        ap.add_argument("--per-cell", type=int, default=seval.PER_CELL)
        ap.add_argument("--limit", type=cli.positive, help="prompts in all, after sampling (a quick look)")
        ap.add_argument("--judge", help=f"judge model (default {llama_guard.MODEL})")
        ap.add_argument("--judge-url", type=cli.server_url, help="an OpenAI-compatible server serving the judge")

    def prepare(self, ctx):
        o = ctx.opts
        judge = o["judge"] or judged.stand_in(ctx.recipe, llama_guard.MODEL)
        source = "fixtures" if o["local"] else o["prompts"] or seval.SOURCE  # the hub's with its pinned revision
        max_tokens = ctx.recipe.files["eval"]["max_gen_toks"]  # the eval stage's token budget
        settings = judged.settings(ctx, judge, max_tokens, llama_guard.MAX_TOKENS, source=source,
                                   per_cell=o["per_cell"], seed=seval.SEED)  # fmt: skip
        inputs = {"model": judged.model_input(ctx, "safety"), "judge": mf.model_input(judge)}
        if o["prompts"]:
            inputs["prompts"] = {"path": o["prompts"], "sha256": core.sha256_path(Path(o["prompts"]))}
        return judged.prepared(ctx, "safety", settings, inputs, seval.SEED)

    def run(self, ctx, p, b):
        o, settings = ctx.opts, p.recipe["rendered"]
        out = judged.work_dir(b)
        src = Path(o["prompts"]) if o["prompts"] else out / "seval.jsonl"
        if o["local"]:
            core.write_jsonl(src, fixtures.seval_rows())
        elif not o["prompts"] and not src.exists():
            if venv.run(
                "infer",
                ["python", "-m", "evals.seval", "--fetch", src],
                log=b.dir / "log.txt",
                extra_env={"PYTHONPATH": str(core.ROOT), **venv.ONLINE},
            ).returncode:
                raise AloeError(f"[safety] could not fetch {seval.SOURCE}; see {b.dir / 'log.txt'}")
        prompts = seval.sample(seval.load(src), o["per_cell"])[: o["limit"]]
        answers, verdicts = judged.answer_and_judge(
            ctx, b, out, p.inputs["model"]["path"], settings, prompts,
            lambda x: [{"role": "user", "content": x["prompt"]}],
            lambda x, answer: llama_guard.conversation(x["prompt"], answer),
            seval.SEED,
        )  # fmt: skip
        rows = []
        for x in prompts:
            v = llama_guard.parse(verdicts[x["id"]]["text"])
            rows.append({**x, "answer": answers[x["id"]]["text"], "judge_output": verdicts[x["id"]]["text"],
                         "label": v.label, "categories": v.categories})  # fmt: skip
        core.write_jsonl(out / "per_prompt.jsonl", rows)
        tabs = asr.tables(rows)
        (out / "results").mkdir(exist_ok=True)
        (out / "results" / "results_safety.json").write_text(json.dumps(asr.results_file(tabs, settings), indent=2))
        text = "\n\n".join(
            f"## ASR by {dim} (P-BETA Table {13 if dim == 'style' else 14})\n\n"
            f"{markdown(asr.HEADERS, asr.rows_for_print(tabs[dim]))}"
            for dim in tabs
        )
        (out / "asr.md").write_text(f"# S-Eval attack success rate: {p.inputs['model']['path']}, judge "
                                    f"{settings['judge']}\n\n{text}\n")  # fmt: skip
        for dim in tabs:
            print(f"\nASR by {dim} (P-BETA Table {13 if dim == 'style' else 14})\n"
                  f"{table(asr.HEADERS, asr.rows_for_print(tabs[dim]))}")  # fmt: skip
        return {
            "prompts": len(rows),
            "unparsed": tabs["style"]["avg"]["unparsed"],
            "asr_style_avg": tabs["style"]["avg"]["asr"],
            "asr_risk_avg": tabs["risk"]["avg"]["asr"],
        }

    def summary(self, ctx, p, m):
        x = m["metrics"]
        return f"{p.folder}  ({x['unparsed']} of {x['prompts']} verdicts unparsed)"


STAGE = Safety()

main = partial(driver.main, STAGE)  # the command line: the one stage driver


if __name__ == "__main__":
    sys.exit(main())
