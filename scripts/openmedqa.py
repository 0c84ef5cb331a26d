"""Stage openmedqa (`make eval SUITE=openmedqa`): OpenMedQA's open-ended MedQA questions answered by the model under
test, each answer judged against the reference by an LLM (default DeepSeek-R1, P-CR's judge; --judge, --judge-url
for an OpenAI-compatible server), and the accuracy with its drop from multiple-choice MedQA (P-CR Table 5).

The model answers each question as one turn after evals/openmedqa.py's system prompt, with the recipe's sampling
(medprompt.yaml temperature/top_p) and OpenMedQA's budget; the judge decodes greedily. Multiple-choice MedQA is read
from this model's `make eval` (SUITE=mcqa) results, or --mcqa-results; without them the drop has no number. With
--local (`FIXTURES=1`) the questions are evals/fixtures.py's and the profile's stand-ins replace the model and the
judge. Answers and verdicts are appended as they finish; a rerun with the same settings resumes.

  python -m scripts.openmedqa --model HPAI-BSC/Llama3.1-Aloe-Beta-8B --backend vllm --judge-url http://host:8000/v1
  python -m scripts.openmedqa --profile cpu-tiny --local --model meta-llama/Llama-3.1-8B-Instruct
Outputs: <stage>/out/{answers,judge}.jsonl, per_question.jsonl, results/results_openmedqa.json (lm-eval's shape:
`make verify SUITE=openmedqa` reads it).
"""

import argparse
import json
import sys
from functools import partial
from pathlib import Path

from evals import fixtures
from evals import openmedqa as om
from evals.aggregates import load_results, measured_scores
from scripts import core
from scripts.core import AloeError, table
from scripts.lib import cli, driver, judged, venv
from scripts.lib import manifest as mf


def multiple_choice(path) -> tuple:
    """(acc, stderr) x100 of medqa_4options in an lm-eval results file or folder; (None, None) without one."""
    if path is None:
        return None, None
    s = measured_scores(load_results(path), "acc", 100).get("medqa_4options")
    return (s.value, s.stderr) if s else (None, None)


class OpenMedQA(driver.Stage):
    name = "openmedqa"

    def options(self, ap):
        ap.add_argument("--model", help="hub id or path (default: the recipe run's final DPO model)")
        ap.add_argument("--suite", choices=("openmedqa",), default="openmedqa", help=argparse.SUPPRESS)
        ap.add_argument("--backend", choices=("hf", "vllm"), default="hf")
        ap.add_argument("--local", action="store_true", help="the fixture questions (evals/fixtures.py)")
        ap.add_argument("--questions", help=f"an {om.FILE} already on disk (default: fetched from {om.REPO})")
        ap.add_argument("--limit", type=cli.positive, help="questions in all (a quick look)")
        ap.add_argument("--max-tokens", type=int, default=om.MAX_TOKENS, help="the answer's token budget")
        ap.add_argument("--judge", help=f"judge model (default {om.JUDGE})")
        ap.add_argument("--judge-url", type=cli.server_url, help="an OpenAI-compatible server serving the judge")
        ap.add_argument("--mcqa-results", help="lm-eval results with medqa_4options (default: this model's mcqa eval)")

    def prepare(self, ctx):
        o = ctx.opts
        judge = o["judge"] or judged.stand_in(ctx.recipe, om.JUDGE)
        mc_path = Path(o["mcqa_results"]) if o["mcqa_results"] else judged.mcqa_lm_eval(ctx)
        source = "fixtures" if o["local"] else o["questions"] or f"{om.REPO}/{om.FILE}"
        settings = judged.settings(ctx, judge, o["max_tokens"], om.JUDGE_MAX_TOKENS, source=source,
                                   mcqa_results=None if mc_path is None else str(mc_path))  # fmt: skip
        inputs = {"model": judged.model_input(ctx, "openmedqa"), "judge": mf.model_input(judge)}
        if o["questions"]:
            inputs["questions"] = {"path": o["questions"], "sha256": core.sha256_path(Path(o["questions"]))}
        return judged.prepared(ctx, "openmedqa", settings, inputs, om.SEED, mc_path=mc_path)

    def run(self, ctx, p, b):
        o, settings = ctx.opts, p.recipe["rendered"]
        out = judged.work_dir(b)
        src = Path(o["questions"]) if o["questions"] else out / om.FILE
        if o["local"]:
            src.write_text(json.dumps(fixtures.openmedqa_rows()))
        elif not o["questions"] and not src.exists():
            fetch = (
                "import shutil, sys; from huggingface_hub import hf_hub_download as d; "
                f"shutil.copy(d({om.REPO!r}, {om.FILE!r}, repo_type='dataset'), sys.argv[1])"
            )
            if venv.run("infer", ["python", "-c", fetch, src], log=b.dir / "log.txt", extra_env=venv.ONLINE).returncode:
                raise AloeError(f"[openmedqa] could not fetch {om.REPO}/{om.FILE}; see {b.dir / 'log.txt'}")
        rows = om.load(src)[: o["limit"]]
        answers, verdicts = judged.answer_and_judge(
            ctx, b, out, p.inputs["model"]["path"], settings, rows,
            lambda q: om.answer_messages(q["question"]), om.judge_messages, om.SEED,
        )  # fmt: skip
        per = [
            {
                **q,
                "response": answers[q["id"]]["text"],
                "judge_output": verdicts[q["id"]]["text"],
                "verdict": om.parse(verdicts[q["id"]]["text"]),
            }
            for q in rows
        ]
        core.write_jsonl(out / "per_question.jsonl", per)
        acc = om.accuracy([x["verdict"] for x in per])
        res = om.results_file(acc, multiple_choice(p.own["mc_path"]), settings)
        (out / "results").mkdir(exist_ok=True)
        (out / "results" / "results_openmedqa.json").write_text(json.dumps(res, indent=2))
        shown = [[t.removeprefix("openmedqa_"), v["acc,none"], v["acc_stderr,none"]] for t, v in res["results"].items()]
        print(f"\nOpenMedQA (P-CR Table 5), judge {settings['judge']}\n{table(['column', 'acc %', 'stderr'], shown)}")
        return {k: acc[k] for k in ("questions", "correct", "unparsed", "acc")}

    def summary(self, ctx, p, m):
        x = m["metrics"]
        return f"{p.folder}  ({x['unparsed']} of {x['questions']} verdicts unparsed)"


STAGE = OpenMedQA()

main = partial(driver.main, STAGE)  # the command line: the one stage driver


if __name__ == "__main__":
    sys.exit(main())
