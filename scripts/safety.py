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
from pathlib import Path

from evals import asr, fixtures, llama_guard, seval
from scripts import core
from scripts.core import markdown, table
from scripts.lib import cli, generation, judged, stages, venv
from scripts.lib import manifest as mf
from scripts.lib.judged import fresh_out, model_and_dir, stand_in


def main(argv=None):
    ap = cli.stage_parser(__doc__)
    ap.add_argument("--model", help="hub id or path (default: the recipe run's final DPO model)")
    ap.add_argument("--suite", choices=("safety",), default="safety", help=argparse.SUPPRESS)  # `make eval` passes it
    ap.add_argument("--backend", choices=("hf", "vllm"), default="hf")
    ap.add_argument("--local", action="store_true", help="the fixture prompts (evals/fixtures.py)")
    ap.add_argument("--prompts", help="an S-Eval attack JSONL already on disk (default: fetched from the hub)")
    ap.add_argument("--per-cell", type=int, default=seval.PER_CELL)
    ap.add_argument("--limit", type=int, help="prompts in all, after sampling (a quick look)")
    ap.add_argument("--judge", help=f"judge model (default {llama_guard.MODEL})")
    ap.add_argument("--judge-url", help="an OpenAI-compatible server serving the judge")
    a = ap.parse_args(argv)
    r = cli.load(a)
    model, stage_dir = model_and_dir(a, r, "safety")
    judge = a.judge or stand_in(a, r, llama_guard.MODEL)
    source = "fixtures" if a.local else a.prompts or f"{seval.REPO}/{seval.FILE}"
    max_tokens = r.files["eval"]["max_gen_toks"]  # the eval stage's token budget
    settings = judged.settings(a, r, judge, max_tokens, llama_guard.MAX_TOKENS, source=source, per_cell=a.per_cell,
                               seed=seval.SEED)  # fmt: skip
    inputs = {"model": model, "judge": mf.model_input(judge)}
    if a.prompts:
        inputs["prompts"] = {"path": a.prompts, "sha256": core.sha256_path(Path(a.prompts))}
    st = judged.stage(a, r, "safety", settings, inputs, seval.SEED)
    if st.skip():
        return 0
    out = fresh_out(st, a)
    with st:
        out.mkdir(parents=True, exist_ok=True)
        src = Path(a.prompts) if a.prompts else out / "seval.jsonl"
        if a.local:
            core.write_jsonl(src, fixtures.seval_rows())
        elif not a.prompts and not src.exists():
            if venv.run(
                "infer",
                ["python", "-m", "evals.seval", "--fetch", src],
                log=st.dir / "log.txt",
                extra_env={"PYTHONPATH": str(core.ROOT), **venv.ONLINE},
            ).returncode:
                raise SystemExit(f"[safety] could not fetch {seval.REPO}/{seval.FILE}; see {st.dir / 'log.txt'}")
        prompts = seval.sample(seval.load(src), a.per_cell)[: a.limit]
        answers, verdicts = judged.answer_and_judge(
            a, r, st, out, model["path"], settings, prompts,
            lambda p: [{"role": "user", "content": p["prompt"]}],
            lambda p, answer: llama_guard.conversation(p["prompt"], answer),
            seval.SEED,
        )  # fmt: skip
        rows = []
        for p in prompts:
            v = llama_guard.parse(verdicts[p["id"]]["text"])
            rows.append(
                {
                    **p,
                    "answer": answers[p["id"]]["text"],
                    "judge_output": verdicts[p["id"]]["text"],
                    "label": v.label,
                    "categories": v.categories,
                }
            )
        core.write_jsonl(out / "per_prompt.jsonl", rows)
        tabs = asr.tables(rows)
        (out / "results").mkdir(exist_ok=True)
        (out / "results" / "results_safety.json").write_text(json.dumps(asr.results_file(tabs, settings), indent=2))
        text = "\n\n".join(
            f"## ASR by {dim} (P-BETA Table {13 if dim == 'style' else 14})\n\n"
            f"{markdown(asr.HEADERS, asr.rows_for_print(tabs[dim]))}"
            for dim in tabs
        )
        (out / "asr.md").write_text(f"# S-Eval attack success rate: {model['path']}, judge {judge}\n\n{text}\n")
        for dim in tabs:
            print(
                f"\nASR by {dim} (P-BETA Table {13 if dim == 'style' else 14})\n"
                f"{table(asr.HEADERS, asr.rows_for_print(tabs[dim]))}"
            )
        stages.publish_all(st)  # written in place as they finish (resumable); hashed here
        st.m["tools"] = generation.tools(a.backend)
        st.m["metrics"] = {
            "prompts": len(rows),
            "unparsed": tabs["style"]["avg"]["unparsed"],
            "asr_style_avg": tabs["style"]["avg"]["asr"],
            "asr_risk_avg": tabs["risk"]["avg"]["asr"],
        }
    print(f"[safety] done: {stage_dir}  ({st.m['metrics']['unparsed']} of {len(rows)} verdicts unparsed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
