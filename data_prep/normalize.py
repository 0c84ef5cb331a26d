"""Step a: read every source of the registry and write one conversation schema.

SFT rows:        {id, source, block, task, messages: [{role, content}], meta}
preference rows: {id, source, block, task, prompt: [msgs], chosen: [msgs], rejected: [msgs]}
Formats (data_prep/sources.yaml `format`): alpaca (instruction, input, output; an input "<noinput>" is
empty), sharegpt (conversations of {from, value}), messages, qa (question/answer columns, renamable with
`fields`), mcqa_cot (question and a chain-of-thought answer), preference (prompt, chosen, rejected as text
or messages), cod (Chain-of-Diagnosis: `CoD_conversations` is a JSON string of turns), tagged_text (one
`text` column "<HUMAN>: ... <ASSISTANT>: ..."). A record that does not fit its format, or breaks its own
constraints (an answer that is not among its options, chosen equal to rejected), goes to the rejects with
the file, line and reason. A source that cannot be opened is reported and the others go on; the step then
exits 1 naming it. So does a source that loses more than --max-reject-rate of its rows (a layout other than the
one declared loses them all): a table names it, its rows in and kept, and its top reasons with a line each.

  python -m data_prep.normalize --sources-dir DIR --out normalized.jsonl --rejects r.jsonl --report r.json
  (reads DIR/<name>.jsonl or .json for every registry entry present there; --hub-dir DIR: a folder laid out
  like the hub, DIR/<owner>/<repo>; neither: the hub itself, streamed)
"""

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

import yaml

from scripts.core import table

from .io import Report, Writer, read_jsonl

# [C] not published: a source may lose at most 2% of its rows here (the authors' copies are clean; a mis-declared
# layout or a changed column loses them all). A recipe sets it as recipe.yaml `max_reject_rate`.
MAX_REJECT_RATE = 0.02

REGISTRY = Path(__file__).with_name("sources.yaml")
VARIANTS = ("authors", "upstream")
ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "chatgpt": "assistant",
    "bing": "assistant",
    "model": "assistant",
}
# The columns each format reads, by role; an entry's `fields` renames them.
COLUMNS = {
    "alpaca": {"instruction": "instruction", "output": "output"},
    "sharegpt": {"conversations": "conversations"},
    "messages": {"messages": "messages"},
    "qa": {"question": "question", "answer": "answer"},
    "mcqa_cot": {"question": "question", "answer": "response"},
    "preference": {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"},
    "cod": {"conversations": "CoD_conversations"},
    "tagged_text": {"text": "text"},
}
OPTIONAL = {"alpaca": {"input"}, "mcqa_cot": {"options"}}  # read when present
NO_INPUT = {"", "<noinput>", "<no input>"}
TAG = re.compile(r"<(HUMAN|ASSISTANT)>:")
EMBEDDED_OPTION = re.compile(r"(?:^|\s)([A-J])[.)]\s")
ANSWER_LETTER = re.compile(r"answer(?: is)?:?\s*\[?\(?([A-J])\b[\])]?", re.IGNORECASE)


class Malformed(ValueError):
    pass


class SourceError(RuntimeError):
    pass


def registry(blocks=None, variant="authors", redteam=None):
    """The entries of the registry in the given source set (an entry without `variant` is in both); of the
    red-team block, the entry whose config is `redteam` (the recipe's DPO stage 2), or all when None."""
    if variant not in VARIANTS:
        raise SystemExit(f"unknown source set {variant!r}; one of {', '.join(VARIANTS)}")
    reg = yaml.safe_load(REGISTRY.read_text())
    if redteam and redteam not in {e["config"] for e in reg["redteam"]}:
        raise SystemExit(f"no red-team source with config {redteam!r} in {REGISTRY.name}")
    return [
        dict(e, block=b)
        for b, entries in reg.items()
        if not blocks or b in blocks
        for e in entries
        if e.get("variant", variant) == variant and (b != "redteam" or not redteam or e["config"] == redteam)
    ]


def columns(entry) -> dict:
    """{role: column} the entry's format reads (the filter column included)."""
    cols = {**COLUMNS[entry["format"]], **(entry.get("fields") or {})}
    if entry.get("filter"):
        cols["filter"] = entry["filter"]["column"]
    return cols


def _text(row, key):
    value = row.get(key)
    if value is None:
        raise Malformed(f"missing field {key!r}")
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        value = value[0]  # a list of reference answers (BioASQ's ideal_answer): the first
    if not isinstance(value, str):
        raise Malformed(f"wrong type: {key!r} is {type(value).__name__}, not text")
    return value


def _turns(value, key):
    if isinstance(value, str):
        return [{"role": "assistant" if key != "prompt" else "user", "content": value}]
    if (
        isinstance(value, list)
        and value
        and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in value)
    ):
        return [{"role": m.get("role", "user"), "content": m["content"]} for m in value]
    raise Malformed(
        f"missing field {key!r}" if value is None else f"wrong type: {key!r} is neither text nor a list of messages"
    )


def _sharegpt(conv, key):
    if not isinstance(conv, list) or not conv:
        raise Malformed(f"missing field {key!r}" if conv is None else f"wrong type: {key!r}")
    msgs = []
    for turn in conv:
        if not isinstance(turn, dict) or turn.get("from") not in ROLES or not isinstance(turn.get("value"), str):
            raise Malformed(f"malformed turn: {str(turn)[:80]}")
        msgs.append({"role": ROLES[turn["from"]], "content": turn["value"]})
    return msgs


def _cod_answer(turn: dict) -> str:
    """One Chain-of-Diagnosis assistant turn as text: symptoms, candidates, reasoning, confidence, decision."""
    candidates = "\n".join(
        f"- {d['disease']}" + (f": {d['common_symptom']}" if d.get("common_symptom") else "")
        for d in turn.get("disease_recall") or []
    )
    parts = [
        f"## Patient symptoms:\n{', '.join(turn.get('symptom_abstraction') or [])}",
        f"## Likely diagnoses:\n{candidates}",
        f"## Diagnostic reasoning:\n{turn.get('diagnostic_reasoning', '')}",
        f"## Diagnostic confidence:\n{json.dumps(turn.get('confidence_assessment', {}))}",
    ]
    if turn.get("value"):
        head = "## Diagnosis:" if turn.get("decision") == "diagnosis" else "## To diagnose, I need to know:"
        parts.append(f"{head}\n{turn['value']}")
    return "\n\n".join(parts)


def _cod(row, key):
    try:
        turns = json.loads(_text(row, key))
    except json.JSONDecodeError as e:
        raise Malformed(f"malformed JSON in {key!r} ({e.msg})") from None
    if not isinstance(turns, list) or len(turns) < 2 or not all(isinstance(t, dict) for t in turns):
        raise Malformed(f"wrong type: {key!r} is not a list of turns")
    msgs = []
    for i, turn in enumerate(turns):
        if i % 2 == 0:
            msgs.append({"role": "user", "content": _text(turn, "value")})
        else:
            msgs.append({"role": "assistant", "content": _cod_answer(turn)})
    return msgs


def _tagged(text):
    parts = TAG.split(text)
    if parts[0].strip() or len(parts) < 5:
        raise Malformed("not '<HUMAN>: ... <ASSISTANT>: ...' text")
    return [
        {"role": "user" if tag == "HUMAN" else "assistant", "content": body.strip()}
        for tag, body in zip(parts[1::2], parts[2::2])
    ]


def _check_answer(letters, answer: str):
    found = ANSWER_LETTER.findall(answer)
    if len(letters) > 1 and found and found[-1].upper() not in letters:
        raise Malformed(f"answer {found[-1].upper()} is not among the options {', '.join(letters)}")


def convert(row: dict, fmt: str, fields: dict | None = None) -> dict:
    """The unified fields of one record (messages, or prompt/chosen/rejected)."""
    if fmt not in COLUMNS:
        raise Malformed(f"unknown format {fmt!r}")
    f = {**COLUMNS[fmt], **(fields or {})}
    if fmt == "alpaca":
        extra = row.get("input")
        extra = extra.strip() if isinstance(extra, str) and extra.strip() not in NO_INPUT else ""
        user = _text(row, f["instruction"]) + ("\n\n" + extra if extra else "")
        return {
            "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": _text(row, f["output"])}]
        }
    if fmt == "sharegpt":
        return {"messages": _sharegpt(row.get(f["conversations"]), f["conversations"])}
    if fmt == "messages":
        return {"messages": _turns(row.get(f["messages"]), f["messages"])}
    if fmt == "cod":
        return {"messages": _cod(row, f["conversations"])}
    if fmt == "tagged_text":
        return {"messages": _tagged(_text(row, f["text"]))}
    if fmt in ("qa", "mcqa_cot"):
        question, answer = _text(row, f["question"]), _text(row, f["answer"])
        if fmt == "mcqa_cot" and isinstance(row.get("options"), (dict, list)) and row["options"]:
            opts = list(
                row["options"].items() if isinstance(row["options"], dict) else zip("ABCDEFGHIJ", row["options"])
            )
            _check_answer([str(k) for k, _ in opts], answer)
            question += "\n" + "\n".join(f"{k}. {v}" for k, v in opts)
        elif fmt == "mcqa_cot":  # the options inside the question, after "Options:" (HPAI-BSC's CoT sets)
            _check_answer(
                EMBEDDED_OPTION.findall(re.split(r"(?i)options:", question)[-1])
                if re.search(r"(?i)options:", question)
                else [],
                answer,
            )
        return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}
    pref = {k: _turns(row.get(f[k]), f[k]) for k in ("prompt", "chosen", "rejected")}
    if pref["chosen"] == pref["rejected"]:
        raise Malformed("chosen and rejected are the same answer")
    return pref


def local_file(entry, sources_dir):
    """DIR/<name>.jsonl or DIR/<name>.json, whichever exists."""
    return next((p for ext in (".jsonl", ".json") if (p := Path(sources_dir) / f"{entry['name']}{ext}").exists()), None)


def open_hub(entry, hub_dir=None):
    """The streamed `datasets` split of an entry: from the hub, or from a folder laid out like it."""
    import datasets

    where = str(Path(hub_dir) / entry["hub"]) if hub_dir else entry["hub"]
    kwargs = {k: entry[k] for k in ("data_files", "revision") if entry.get(k)}
    if hub_dir and not Path(where).is_dir():
        raise FileNotFoundError(f"dataset {entry['hub']} not found (no folder {where})")
    return datasets.load_dataset(where, entry.get("config"), split=entry["split"], streaming=True, **kwargs)


def rows_of(entry, sources_dir=None, hub_dir=None):
    """(file, line, row, error) of one source; rows outside the entry's filter are skipped."""
    flt = entry.get("filter")
    if sources_dir is not None:
        path = local_file(entry, sources_dir)
        rows = ((str(path), n, row, err) for n, row, err in read_jsonl(path)) if path else iter(())
    elif entry.get("hub") is None:
        return
    else:
        try:
            rows = ((entry["hub"], n, row, None) for n, row in enumerate(open_hub(entry, hub_dir), 1))
        except Exception as e:  # noqa: BLE001 - the hub's and datasets' own errors, named with the entry
            raise SourceError(f"{type(e).__name__}: {' '.join(str(e).split())}") from e
    try:
        for path, n, row, err in rows:
            if (
                flt
                and row is not None
                and isinstance(row.get(flt["column"]), str)
                and not row[flt["column"]].startswith(flt["prefix"])
            ):
                continue
            if flt and row is not None and not isinstance(row.get(flt["column"]), str):
                err = f"missing field {flt['column']!r} (the entry's filter)"
            yield path, n, row, err
    except Exception as e:  # noqa: BLE001 - a hub file that breaks half-way through the stream
        raise SourceError(f"{type(e).__name__} after some rows: {' '.join(str(e).split())}") from e


def run(
    out,
    rejects,
    report_path,
    sources_dir=None,
    blocks=None,
    variant="authors",
    hub_dir=None,
    redteam=None,
    max_reject_rate=MAX_REJECT_RATE,
):
    rep, failed, where = Report("normalize", rejects), {}, defaultdict(dict)  # where: source -> reason -> file:line
    with Writer(out) as w:
        for entry in registry(blocks, variant, redteam):
            src = entry["name"]
            try:
                for path, n, row, err in rows_of(entry, sources_dir, hub_dir):
                    rep.saw(src)
                    if err is None:
                        try:
                            unified = convert(row, entry["format"], entry.get("fields"))
                            w.write(
                                {
                                    "id": f"{src}:{n}",
                                    "source": src,
                                    "block": entry["block"],
                                    "task": entry["task"],
                                    "needs_prompt": entry.get("needs_prompt", False),
                                    **unified,
                                }
                            )
                        except Malformed as e:
                            err = str(e)
                        except UnicodeEncodeError:
                            err = "invalid Unicode (a lone surrogate)"
                    if err:
                        reason = err.split(" (")[0].split(":")[0]
                        where[src].setdefault(reason, f"{path}:{n}")
                        rep.drop(src, reason, row, file=path, line=n, detail=err)
                        continue
                    rep.keep(src)
            except SourceError as e:
                failed[src] = f"{entry.get('hub')}: {e}"
                print(f"[normalize] source {src} could not be read: {failed[src]}", flush=True)
    result = rep.close(report_path)
    lost = {
        src: {**c, "rate": round(sum(c["dropped"].values()) / c["in"], 4), "where": where[src]}
        for src, c in result["per_source"].items()
        if c["in"] and sum(c["dropped"].values()) / c["in"] > max_reject_rate
    }
    if failed:
        result["failed_sources"] = failed
    if lost:
        result |= {"lost_sources": lost, "max_reject_rate": max_reject_rate}
    if failed or lost:
        Path(report_path).write_text(json.dumps(result, indent=2))
    return result


def lost_table(lost: dict) -> str:
    """Sources that lost too many rows: rows in, kept, the rate, and the top three reasons with a line each."""
    rows = []
    for src, c in lost.items():
        top = sorted(c["dropped"].items(), key=lambda kv: -kv[1])[:3]
        for i, (reason, n) in enumerate(top):
            head = [src, c["in"], c["out"], f"{c['rate']:.1%}"] if i == 0 else ["", "", "", ""]
            rows.append([*head, f"{n} x {reason}", c["where"].get(reason, "")])
    return table(["source", "in", "kept", "rejected", "reason", "first at"], rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources-dir", help="folder of <source name>.jsonl files (default: the hub)")
    ap.add_argument("--hub-dir", help="folder laid out like the hub, <owner>/<repo> (default: the hub)")
    ap.add_argument("--sources", default="authors", choices=VARIANTS, help="source set (default authors)")
    ap.add_argument("--blocks", nargs="*", help="only these registry blocks")
    ap.add_argument("--redteam", help="the red-team source's config (the recipe's DPO stage 2; default: all)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--rejects", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument(
        "--max-reject-rate",
        type=float,
        default=MAX_REJECT_RATE,
        help=f"the share of a source's rows it may lose before the step fails (default {MAX_REJECT_RATE})",
    )
    a = ap.parse_args(argv)
    result = run(
        a.out, a.rejects, a.report, a.sources_dir, a.blocks, a.sources, a.hub_dir, a.redteam, a.max_reject_rate
    )
    print({k: v for k, v in result.items() if k not in ("per_source", "lost_sources")})
    problems = []
    if result.get("failed_sources"):
        problems.append(
            "sources that could not be read (run `make data-check`): "
            + "; ".join(f"{k}: {v}" for k, v in result["failed_sources"].items())
        )
    if result.get("lost_sources"):
        problems.append(
            f"sources that lost more than {a.max_reject_rate:.1%} of their rows (every row is in {a.rejects}; "
            f"a layout other than the declared one, or a changed column?):\n{lost_table(result['lost_sources'])}"
        )
    if problems:
        raise SystemExit("\n".join(problems))


if __name__ == "__main__":
    main()
