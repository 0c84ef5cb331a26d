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
from pathlib import Path

from evals import fixtures
from evals import openmedqa as om
from evals.aggregates import load_results, measured_scores
from scripts import core
from scripts.core import table
from scripts.lib import cli, generation, judged, stages, venv
from scripts.lib import manifest as mf
from scripts.lib.judged import fresh_out, mcqa_lm_eval, model_and_dir, stand_in


def multiple_choice(path) -> tuple:
    """(acc, stderr) x100 of medqa_4options in an lm-eval results file or folder; (None, None) without one."""
    if path is None:
        return None, None
    s = measured_scores(load_results(path), "acc", 100).get("medqa_4options")
    return (s.value, s.stderr) if s else (None, None)


def main(argv=None):
    ap = cli.stage_parser(__doc__)
    ap.add_argument("--model", help="hub id or path (default: the recipe run's final DPO model)")
    ap.add_argument("--suite", choices=("openmedqa",), default="openmedqa", help=argparse.SUPPRESS)
    ap.add_argument("--backend", choices=("hf", "vllm"), default="hf")
    ap.add_argument("--local", action="store_true", help="the fixture questions (evals/fixtures.py)")
    ap.add_argument("--questions", help=f"an {om.FILE} already on disk (default: fetched from {om.REPO})")
    ap.add_argument("--limit", type=int, help="questions in all (a quick look)")
    ap.add_argument("--max-tokens", type=int, default=om.MAX_TOKENS, help="the answer's token budget")
    ap.add_argument("--judge", help=f"judge model (default {om.JUDGE})")
    ap.add_argument("--judge-url", help="an OpenAI-compatible server serving the judge")
    ap.add_argument("--mcqa-results", help="lm-eval results with medqa_4options (default: this model's mcqa eval)")
    a = ap.parse_args(argv)
    r = cli.load(a)
    model, stage_dir = model_and_dir(a, r, "openmedqa")
    judge = a.judge or stand_in(a, r, om.JUDGE)
    mc_path = Path(a.mcqa_results) if a.mcqa_results else mcqa_lm_eval(a, r)
    source = "fixtures" if a.local else a.questions or f"{om.REPO}/{om.FILE}"
    settings = judged.settings(a, r, judge, a.max_tokens, om.JUDGE_MAX_TOKENS, source=source,
                               mcqa_results=None if mc_path is None else str(mc_path))  # fmt: skip
    inputs = {"model": model, "judge": mf.model_input(judge)}
    if a.questions:
        inputs["questions"] = {"path": a.questions, "sha256": core.sha256_path(Path(a.questions))}
    st = judged.stage(a, r, "openmedqa", settings, inputs, om.SEED)
    if st.skip():
        return 0
    out = fresh_out(st, a)
    with st:
        out.mkdir(parents=True, exist_ok=True)
        src = Path(a.questions) if a.questions else out / om.FILE
        if a.local:
            src.write_text(json.dumps(fixtures.openmedqa_rows()))
        elif not a.questions and not src.exists():
            fetch = (
                "import shutil, sys; from huggingface_hub import hf_hub_download as d; "
                f"shutil.copy(d({om.REPO!r}, {om.FILE!r}, repo_type='dataset'), sys.argv[1])"
            )
            if venv.run(
                "infer", ["python", "-c", fetch, src], log=st.dir / "log.txt", extra_env=venv.ONLINE
            ).returncode:
                raise SystemExit(f"[openmedqa] could not fetch {om.REPO}/{om.FILE}; see {st.dir / 'log.txt'}")
        rows = om.load(src)[: a.limit]
        answers, verdicts = judged.answer_and_judge(
            a, r, st, out, model["path"], settings, rows,
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
        acc = om.accuracy([p["verdict"] for p in per])
        res = om.results_file(acc, multiple_choice(mc_path), settings)
        (out / "results").mkdir(exist_ok=True)
        (out / "results" / "results_openmedqa.json").write_text(json.dumps(res, indent=2))
        shown = [[t.removeprefix("openmedqa_"), v["acc,none"], v["acc_stderr,none"]] for t, v in res["results"].items()]
        print(f"\nOpenMedQA (P-CR Table 5), judge {judge}\n{table(['column', 'acc %', 'stderr'], shown)}")
        stages.publish_all(st)  # written in place as they finish (resumable); hashed here
        st.m["tools"] = generation.tools(a.backend)
        st.m["metrics"] = {k: acc[k] for k in ("questions", "correct", "unparsed", "acc")}
    print(f"[openmedqa] done: {stage_dir}  ({acc['unparsed']} of {acc['questions']} verdicts unparsed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
