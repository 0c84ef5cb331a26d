"""The judged suites per sample, from the files their stages write (scripts/lib/stages.py outputs): safety's S-Eval
prompts with the model's answer and Llama Guard's verdict (out/per_prompt.jsonl), OpenMedQA's questions with the
model's answer, the reference and the judge's verdict (out/per_question.jsonl), and Table 10's questions with the
field the labeller gave them and whether the model answered right (per_sample.jsonl; the labeller's reply from
medical_fields.json where it ran). Each also gives the verify tasks it counts, {task: (k, n)}, and the filter that
shows a task's samples, {task: "key=value"}."""

from pathlib import Path

from data_prep.benchmarks import read_jsonl
from evals import asr, fields, openmedqa
from scripts.core import AloeError, read_json
from scripts.lib import stages

from .markup import esc, filters, flag, table
from .paths import slug

FILES = {"safety": "per_prompt", "openmedqa": "per_question", "fields": "per_sample"}  # the per-sample output
TITLES = {"safety": "Safety (S-Eval, P-BETA Tables 13-14)", "openmedqa": "OpenMedQA (P-CR Table 5)",
          "fields": "Accuracy by medical field (P-BETA Table 10)"}  # fmt: skip


def _safety(rows: list, folder: Path) -> tuple:
    """(rows, {task: (unsafe, judged)}, {task: filter}): a safe answer is the model's success, an unparsed verdict
    neither."""
    tabs = asr.tables(rows)
    columns = [(f"{prefix}_{col}", dim, col, s) for dim, (prefix, _) in asr.TABLES.items()
               for col, s in tabs[dim].items() if col != "avg"]  # fmt: skip
    shown = [{"id": r["id"], "ok": {"safe": True, "unsafe": False}.get(r["label"]), "groups": {"style": r["style"],
              "risk": r["risk"]}, "prompt": r["prompt"], "answer": r["answer"], "reference": None,
              "verdict": r["label"] or "unparsed", "detail": ", ".join(r.get("categories") or []),
              "judge_output": r["judge_output"], "link": None} for r in rows]  # fmt: skip
    return shown, {t: (s["unsafe"], s["judged"]) for t, _, _, s in columns}, {t: f"{d}={c}" for t, d, c, _ in columns}


def _openmedqa(rows: list, folder: Path) -> tuple:
    acc = openmedqa.accuracy([r["verdict"] for r in rows])
    shown = [{"id": r["id"], "ok": r["verdict"] == 1, "groups": {}, "prompt": r["question"], "answer": r["response"],
              "reference": r["answer"], "verdict": {1: "right", 0: "wrong"}.get(r["verdict"], "unparsed (wrong)"),
              "detail": "", "judge_output": r["judge_output"], "link": None} for r in rows]  # fmt: skip
    return shown, {"openmedqa_open": (acc["correct"], acc["questions"])}, {}


def _fields(rows: list, folder: Path) -> tuple:
    """(rows, {field_<field>: (right, samples)}, filters): the field is the labeller's verdict, its reply (where the
    labeller ran) the judge's output."""
    labels = folder / stages.spec("fields").outputs["medical_fields"]
    replies = {(x.get("dataset"), x.get("question")): x.get("cot_medical_field") for x in read_json(labels)
               if isinstance(x, dict)} if labels.is_file() else {}  # fmt: skip
    acc = fields.accuracy(rows)
    counted = [(f"field_{f.lower()}", f, v) for f, v in acc["fields"].items() if v["samples"]]
    shown = [
        {"id": f"{r['task']} {r['doc_id']}", "ok": r["acc"] == 1, "groups": {"field": r["field"] or "unlabelled"},
         "prompt": r["question"], "answer": None, "reference": None, "verdict": r["field"] or "unlabelled",
         "detail": "no question logged" if r.get("no_question") else "",
         "judge_output": replies.get((fields.TASKS.get(r["task"], ("",))[0], r["question"])),
         "link": f"sample-{slug(r['task'])}-{slug(r['doc_id'])}"}
        for r in rows
    ]  # fmt: skip
    return shown, {t: (v["correct"], v["samples"]) for t, _, v in counted}, {t: f"field={f}" for t, f, _ in counted}


READERS = {"safety": _safety, "openmedqa": _openmedqa, "fields": _fields}


def read(folder: Path, stage: str, name: str) -> dict | None:
    """One judged suite's stage folder as the page shows it (`name`: the folder as shown), None without its file."""
    f = folder / stages.spec(stage).outputs[FILES[stage]]
    if not f.is_file():
        return None
    raw = [r for _, r in read_jsonl(f)]
    try:
        rows, counts, selects = READERS[stage](raw, folder)
    except (KeyError, TypeError, AttributeError) as e:
        raise AloeError(f"not the per-sample file scripts/{stage}.py writes (no {e})", file=f)
    return {"id": "judged-" + slug(name), "stage": stage, "folder": name, "file": f"{name}/{f.relative_to(folder)}",
            "rows": rows, "counts": counts, "selects": selects}  # fmt: skip


# --- the page -------------------------------------------------------------------------------------------------------
def _select(key: str, rows: list) -> str:
    values = sorted({r["groups"][key] for r in rows})
    options = "".join(f'<option value="{esc(v)}">{esc(v)} ({sum(r["groups"][key] == v for r in rows)})</option>'
                      for v in values)  # fmt: skip
    return f'<label>{esc(key)} <select data-key="{esc(key)}"><option value="">all</option>{options}</select></label>'


def _sample(r: dict, ids: set) -> str:
    text = f'<div class="q">{esc(r["prompt"])}</div>'
    if r["answer"] is not None:
        text += f'<pre class="answer">{esc(r["answer"])}</pre>'
    if r["reference"] is not None:
        text += f'<div class="ref"><b>reference</b> {esc(r["reference"])}</div>'
    if r["judge_output"]:
        text += f"<details><summary>the judge's output</summary><pre>{esc(r['judge_output'])}</pre></details>"
    if r["link"] in ids:
        text += f' <a href="#{esc(r["link"])}">lm-eval sample</a>'
    return text


def suite(s: dict, ids: set) -> str:
    """One judged suite: its samples with the verdict, filters by outcome and by group (field, style, risk);
    `ids` the page's sample rows (a field's question links to its lm-eval sample)."""
    ident, rows = s["id"], s["rows"]
    labels = ("Safe", "Unsafe") if s["stage"] == "safety" else ("Correct", "Incorrect")
    groups = list(rows[0]["groups"]) if rows else []
    body = [
        (f'id="{esc(ident)}-{esc(slug(r["id"]))}" data-correct="{flag(r["ok"])[0]}"'
         + "".join(f' data-{esc(k)}="{esc(v)}"' for k, v in r["groups"].items()),
         [esc(r["id"]), _sample(r, ids), *(esc(v) for v in r["groups"].values()),
          f"{esc(r['verdict'])} <small>{esc(r['detail'])}</small>", flag(r["ok"])[1]])
        for r in rows
    ]  # fmt: skip
    verdict = {"safety": "Llama Guard", "openmedqa": "judge", "fields": "field (labeller)"}[s["stage"]]
    ok = {"safety": "safe", "openmedqa": "right", "fields": "right"}[s["stage"]]
    k = sum(r["ok"] is True for r in rows)
    return (
        f'<details class="task" id="{esc(ident)}"><summary><b>{esc(TITLES[s["stage"]])}</b> <span>{esc(s["folder"])}: '
        f"{len(rows)} samples, {k} {ok}</span></summary>"
        f'<p class="file">{esc(s["file"])}</p>'
        + filters(ident + "-rows", [r["ok"] for r in rows], labels, "".join(_select(g, rows) for g in groups))
        + table(
            ["id", "prompt, the model's answer, the judge's output", *groups, verdict, ok],
            body,
            "samples",
            f' id="{esc(ident)}-rows"',
        )
        + "</details>"
    )


def section(suites: list, ids: set) -> str:
    inner = "".join(suite(s, ids) for s in suites) or "<p>No judged suite (safety, openmedqa, fields) in this run.</p>"
    return f'<section id="judged"><h2>Judged suites</h2>{inner}</section>'
