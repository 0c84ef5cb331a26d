"""Stage fields (`make eval SUITE=fields`): accuracy per medical field of the MCQA suite (P-BETA Table 10), from the
per-sample outputs of this model's `make eval` (SUITE=mcqa, lm-eval --log_samples) and one field label per question.

Labels come from --labels (a medical_fields.json in HPAI-BSC/medical-fields' layout), else from the authors'
labeller (evals/fields.py: Llama-3-70B-Instruct and their prompt; --judge, --judge-url for an OpenAI-compatible
server, else run with --backend). Labelled questions are kept per question in <runs>/fields-labels/<labeller>-<hash>/ (stages.LABELS_FOLDER)
(one cache per labeller and prompt, shared by every model): a rerun, or another model on the same questions, labels
only what is new; an empty reply (a failed request) is asked again. A reply that names no field of the list is
unlabelled: counted and reported, never a field. A doc logged without a question is counted (`no_question`); on
CareQA_en it is labelled by the question lm-eval asked in its place. With --local the labeller is the profile's
stand-in, offline.

  python -m scripts.fields --model HPAI-BSC/Llama3.1-Aloe-Beta-8B --judge-url http://host:8000/v1
  python -m scripts.fields --model HPAI-BSC/Llama3.1-Aloe-Beta-8B --labels medical_fields.json
Outputs: <stage>/results/results_fields.json (lm-eval's shape, tasks field_<field>: `make verify SUITE=fields`
reads it), per_sample.jsonl, and medical_fields.json (the labels in the authors' layout, usable as --labels).
"""

import argparse
import json
import re
import sys
from functools import partial
from pathlib import Path

from data_prep.benchmarks import column_task
from data_prep.contamination import SAMPLES  # lm-eval's samples_<task>_<date>.jsonl
from evals import fields as fl
from scripts import core
from scripts.core import AloeError, table
from scripts.lib import cli, driver, generation, judged, stages
from scripts.lib import manifest as mf


def read_samples(lm_eval: Path, limit: int | None) -> list:
    """[{task, doc_id, key, question, no_question, acc}] of the labelled tasks (evals/fields.py TASKS), the newest
    file per task; a doc without a question as evals/fields.py question() reads it."""
    files = {}
    for f in sorted(Path(lm_eval).rglob("samples_*.jsonl")):
        m = SAMPLES.search(f.name)
        if m and column_task(m[1]) in fl.TASKS:
            files[column_task(m[1])] = f
    if not files:
        raise AloeError(f"[fields] no lm-eval samples of {', '.join(fl.TASKS)} under {lm_eval}")
    out = []
    for task, f in sorted(files.items()):
        for s in [json.loads(x) for x in f.read_text().splitlines() if x][:limit]:
            k, q, none = fl.question(task, s["doc"])
            out.append({"task": task, "doc_id": s["doc_id"], "key": k, "question": q, "no_question": none,
                        "acc": s["acc"]})  # fmt: skip
    return out


def label(ctx, questions: dict, labeller: str, log: Path) -> dict:
    """{key: the labeller's reply} for {key: (task, question)}, through the per-question cache."""
    o = ctx.opts
    prompt = {"labeller": labeller, "messages": fl.messages(""), "max_tokens": o["max_tokens"], "top_p": fl.TOP_P,
              "temperature": fl.TEMPERATURE}  # fmt: skip
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", labeller.strip("/"))
    cache = ctx.runs / stages.LABELS_FOLDER / f"{slug}-{core.sha256_json(prompt)[:12]}"
    cache.mkdir(parents=True, exist_ok=True)
    core.write_jsonl(cache / "labels.jsonl", [x for x in core.resume_jsonl(cache / "labels.jsonl") if x["text"]])
    done = generation.generate(
        "labels",
        [{"id": k, "messages": fl.messages(q), "seed": fl.SEED + int(k[:8], 16)} for k, (_, q) in questions.items()],
        cache,
        backend="openai" if o["judge_url"] else o["backend"],
        model=labeller,
        base_url=o["judge_url"],
        temperature=fl.TEMPERATURE,
        top_p=fl.TOP_P,
        max_tokens=o["max_tokens"],
        dtype=ctx.recipe.files["eval"]["dtype"],
        log=log,
        gpus=ctx.recipe.world("eval"),
        online=not o["local"],
    )
    return {k: done[k]["text"] for k in questions}


class Fields(driver.Stage):
    name = "fields"

    def options(self, ap):
        ap.add_argument(
            "--model", help="whose MCQA eval to read (as given to `make eval MODEL=`; default the recipe run)"
        )
        ap.add_argument("--suite", choices=("fields",), default="fields", help=argparse.SUPPRESS)
        ap.add_argument("--backend", choices=("hf", "vllm"), default="hf", help="the labeller's, without --judge-url")
        ap.add_argument("--local", action="store_true", help="offline: the labeller is the profile's local stand-in")
        ap.add_argument(
            "--samples", help="an lm-eval output folder with samples_<task>_*.jsonl (default: the mcqa eval)"
        )
        ap.add_argument("--labels", help="a medical_fields.json (the authors' layout): no labeller is run")
        ap.add_argument("--limit", type=cli.positive, help="samples per task (a quick look)")
        ap.add_argument("--max-tokens", type=int, default=fl.MAX_TOKENS, help="the labeller's token budget")
        ap.add_argument("--judge", help=f"labeller model (default {fl.LABELLER})")
        ap.add_argument("--judge-url", type=cli.server_url, help="an OpenAI-compatible server serving the labeller")

    def prepare(self, ctx):
        o = ctx.opts
        src = Path(o["samples"]) if o["samples"] else judged.mcqa_lm_eval(ctx)
        if src is None:
            raise AloeError("[fields] no finished MCQA eval of this model: `make eval SUITE=mcqa MODEL=...` first")
        if o["labels"] and not Path(o["labels"]).is_file():
            raise AloeError(f"[fields] labels file not found: {o['labels']}")
        labeller = None if o["labels"] else o["judge"] or judged.stand_in(ctx.recipe, fl.LABELLER)
        settings = {
            "samples": str(src),
            "limit": o["limit"],
            "labels": o["labels"],
            "labeller": labeller,
            "labeller_url": o["judge_url"],
            "backend": o["backend"],
            "temperature": fl.TEMPERATURE,
            "top_p": fl.TOP_P,
            "max_tokens": o["max_tokens"],
            "fields": "HPAI-BSC/medical-fields configs/medical_fields/medical_fields_35_v2.txt",
        }
        inputs = {"samples": {"path": str(src), "sha256": core.sha256_path(src)}}
        if o["labels"]:
            inputs["labels"] = {"path": o["labels"], "sha256": core.sha256_path(Path(o["labels"]))}
        else:
            inputs["labeller"] = mf.model_input(labeller)
        # rebuilt from clean: the labels are cached per question apart from the stage (stages.LABELS_FOLDER)
        return judged.prepared(
            ctx, "fields", settings, inputs, fl.SEED, tools=not o["labels"], resumable=False, src=src
        )

    def run(self, ctx, p, b):
        o, settings = ctx.opts, p.recipe["rendered"]
        rows = read_samples(p.own["src"], o["limit"])
        questions = {x["key"]: (x["task"], x["question"]) for x in rows if x["key"]}
        if o["labels"]:
            labels = fl.load_labels(o["labels"])
        else:
            replies = label(ctx, questions, settings["labeller"], b.dir / "log.txt")
            labels = {k: fl.parse(t) for k, t in replies.items()}
            (b.partial / "medical_fields.json").write_text(json.dumps([
                {"dataset": fl.TASKS[t][0], "question": q, "medical_field": labels[k], "cot_medical_field": replies[k]}
                for k, (t, q) in questions.items()], indent=1, ensure_ascii=False))  # fmt: skip
        per = [{**x, "field": labels.get(x["key"])} for x in rows]
        core.write_jsonl(b.partial / "per_sample.jsonl", per)
        acc = fl.accuracy(per)
        (b.partial / "results").mkdir()
        (b.partial / "results" / "results_fields.json").write_text(json.dumps(fl.results_file(acc, settings), indent=2))
        shown = [[f, v["samples"], v["acc"], v["stderr"]] for f, v in acc["fields"].items() if v["samples"]]
        print(f"\nAccuracy per medical field (P-BETA Table 10), labels {o['labels'] or settings['labeller']}\n"
              f"{table(['field', 'samples', 'acc', 'stderr'], shown)}")  # fmt: skip
        return {k: acc[k] for k in fl.COUNTS}

    def summary(self, ctx, p, m):
        x = m["metrics"]
        return (f"{p.folder}  ({x['unlabelled']} of {x['samples']} samples unlabelled, "
                f"{x['none']} labelled {fl.NONE}, {x['no_question']} without a question)")  # fmt: skip


STAGE = Fields()

main = partial(driver.main, STAGE)  # the command line: the one stage driver


if __name__ == "__main__":
    sys.exit(main())
