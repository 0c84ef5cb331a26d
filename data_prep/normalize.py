"""Step a: read every source of the registry and write one conversation schema.

SFT rows:        {id, source, block, task, messages: [{role, content}], meta}
preference rows: {id, source, block, task, prompt: [msgs], chosen: [msgs], rejected: [msgs]}
Formats (data_prep/sources.yaml `format`): alpaca (instruction, input, output; an input "<noinput>" is
empty), sharegpt (conversations of {from, value}), messages, qa (question/answer columns, renamable with
`fields`), mcqa_cot (question and a chain-of-thought answer), preference (prompt, chosen, rejected as text
or messages), cod (Chain-of-Diagnosis: `CoD_conversations` is a JSON string of turns), tagged_text (one
`text` column "<HUMAN>: ... <ASSISTANT>: ..."). A record that does not fit its format, or breaks its own
constraints (an answer that is not among its options, chosen equal to rejected), goes to the rejects with
the file, line and reason. A tool's turns (tool, observation, function, ...) take the role `tool` and a tool
call is the assistant's; the report counts rows by role set. A source whose layout is unverified (sources.yaml
`layout`) is read in the format that fits most of its first rows, the declared one first (the report records
"declared X, found Y"), and fails, listing its columns, when none fits. A source that cannot be opened is
reported and the others go on; the step then exits 1 naming it. So does a source that loses more than
--max-reject-rate of its rows: a table names it, its rows in and kept, and its top reasons with a line each.

  python -m data_prep.normalize --sources-dir DIR --out normalized.jsonl --rejects r.jsonl --report r.json
  (reads DIR/<name>.jsonl or .json for every registry entry present there; --hub-dir DIR: a folder laid out
  like the hub, DIR/<owner>/<repo>; neither: the hub itself, streamed)
"""

import argparse
import json
import re
from collections import Counter, defaultdict
from itertools import chain, islice
from pathlib import Path

import yaml

from scripts.core import table

from . import hub
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
    "chatgpt": "assistant",
    "bing": "assistant",
    "model": "assistant",
    "function_call": "assistant",  # a tool call is the assistant's turn (LLaMA-Factory's ShareGPT `function_call`)
    "system": "system",
    # A tool's result: one role, `tool`; each SFT recipe maps it to its chat template's (Llama 3.1 `ipython`,
    # Qwen2.5 `tool`). Any other role is kept as it is and counted in the report's role sets.
    "tool": "tool",
    "observation": "tool",
    "function": "tool",
    "function_response": "tool",
    "tool_response": "tool",
    "ipython": "tool",
}
TEMPLATE_ROLES = {"user", "assistant", "system", "tool"}
# The columns each format reads, by role: the first of a role's names that a row has (the first when none);
# an entry's `fields` renames them (one name each). The authors' copies vary the answer's name (`response`,
# `answer`, `output`) and where the turns are (`conversations`, `messages`; {from, value} or {role, content}).
COLUMNS = {
    "alpaca": {"instruction": ("instruction",), "output": ("output", "response", "answer")},
    "sharegpt": {"conversations": ("conversations", "messages")},
    "messages": {"messages": ("messages", "conversations")},
    "qa": {"question": ("question",), "answer": ("answer", "response", "output")},
    "mcqa_cot": {"question": ("question",), "answer": ("response", "answer", "output")},
    "preference": {"prompt": ("prompt",), "chosen": ("chosen",), "rejected": ("rejected",)},
    "cod": {"conversations": ("CoD_conversations",)},
    "tagged_text": {"text": ("text",)},
}
# Read when present (a preference row without `prompt` has it as the turns its chosen and rejected share).
OPTIONAL = {"alpaca": {"input"}, "mcqa_cot": {"options"}, "preference": {"prompt"}}
# [C] rows of a source whose layout is unverified that normalize reads before choosing its format.
DETECT_ROWS = 50
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


def names(fmt: str, fields: dict | None = None) -> dict:
    """{role: (column names)} of a format, with the entry's renames."""
    return {**COLUMNS[fmt], **{k: (v,) for k, v in (fields or {}).items()}}


def fields_of(entry, fmt) -> dict | None:
    """The entry's column renames, which belong to its declared format only."""
    return entry.get("fields") if fmt == entry["format"] else None


def _pick(row, aliases) -> str:
    return next((c for c in aliases if c in row), aliases[0])


def columns(entry, fmt=None, seen=()) -> dict:
    """{role: column} that `fmt` (default the entry's) reads from rows with the columns `seen` (the filter
    column included; an optional role only when seen)."""
    fmt = fmt or entry["format"]
    cols = {
        role: _pick(seen, aliases)
        for role, aliases in names(fmt, fields_of(entry, fmt)).items()
        if role not in OPTIONAL.get(fmt, ()) or _pick(seen, aliases) in seen
    }
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


def _turn(t) -> dict:
    """One turn, {from, value} or {role, content}; an assistant's tool calls without text are its content."""
    if isinstance(t, dict) and t.get("content") is None and t.get("tool_calls"):
        t = {**t, "content": json.dumps(t["tool_calls"], ensure_ascii=False)}
    role = t.get("from", t.get("role")) if isinstance(t, dict) else None
    content = t.get("value", t.get("content")) if isinstance(t, dict) else None
    if not isinstance(role, str) or not role.strip() or not isinstance(content, str):
        raise Malformed(f"malformed turn: {str(t)[:80]}")
    role = role.strip().lower()
    return {"role": ROLES.get(role, role), "content": content}


def _turns(value, key, role=None):
    """A list of turns; text is one turn of `role` (where the column may be text)."""
    if isinstance(value, str) and role:
        return [{"role": role, "content": value}]
    if not isinstance(value, list) or not value:
        raise Malformed(f"missing field {key!r}" if value is None else f"wrong type: {key!r} is not a list of turns")
    return [_turn(t) for t in value]


def _preference(row, f) -> dict:
    """prompt, chosen and rejected as turns; without a prompt column the prompt is the turns both answers share
    (Skywork-style pairs), and answers that repeat the prompt's turns are cut to what follows them."""
    chosen, rejected = (_turns(row.get(c := _pick(row, f[k])), c, "assistant") for k in ("chosen", "rejected"))
    key = _pick(row, f["prompt"])
    if key in row:
        prompt = _turns(row[key], key, "user")
    else:
        shared = next((i for i, (a, b) in enumerate(zip(chosen, rejected)) if a != b), min(len(chosen), len(rejected)))
        if not shared:
            raise Malformed(f"missing field {key!r} (and chosen and rejected share no first turn)")
        prompt = chosen[:shared]
    n = len(prompt)
    if chosen[:n] == prompt == rejected[:n] and min(len(chosen), len(rejected)) > n:
        chosen, rejected = chosen[n:], rejected[n:]
    if chosen == rejected:
        raise Malformed("chosen and rejected are the same answer")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


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
    f = names(fmt, fields)
    if fmt == "preference":
        return _preference(row, f)
    col = {role: _pick(row, aliases) for role, aliases in f.items()}
    if fmt == "alpaca":
        extra = row.get("input")
        extra = extra.strip() if isinstance(extra, str) and extra.strip() not in NO_INPUT else ""
        user = _text(row, col["instruction"]) + ("\n\n" + extra if extra else "")
        return {
            "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": _text(row, col["output"])}]
        }
    if fmt in ("sharegpt", "messages"):
        key = col["conversations" if fmt == "sharegpt" else "messages"]
        return {"messages": _turns(row.get(key), key)}
    if fmt == "cod":
        return {"messages": _cod(row, col["conversations"])}
    if fmt == "tagged_text":
        return {"messages": _tagged(_text(row, col["text"]))}
    question, answer = _text(row, col["question"]), _text(row, col["answer"])
    if fmt == "mcqa_cot" and isinstance(row.get("options"), (dict, list)) and row["options"]:
        opts = list(row["options"].items() if isinstance(row["options"], dict) else zip("ABCDEFGHIJ", row["options"]))
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


def fits(row, fmt, fields=None) -> bool:
    try:
        convert(row, fmt, fields)
    except (Malformed, UnicodeEncodeError):
        return False
    return True


def detect(rows: list, entry) -> tuple:
    """(format, rows it fits) among the known formats of the entry's kind (preference or conversation): the
    entry's format unless another fits more of the sampled rows."""
    declared, pref = entry["format"], entry["format"] == "preference"
    best = (declared, 0)
    for fmt in (declared, *(f for f in COLUMNS if f != declared and (f == "preference") == pref)):
        n = sum(fits(row, fmt, fields_of(entry, fmt)) for row in rows)
        if n > best[1]:
            best = (fmt, n)
    return best


def local_file(entry, sources_dir):
    """DIR/<name>.jsonl or DIR/<name>.json, whichever exists."""
    return next((p for ext in (".jsonl", ".json") if (p := Path(sources_dir) / f"{entry['name']}{ext}").exists()), None)


def _opened(fn, *args):
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - the hub's and datasets' own errors, named with the entry
        raise SourceError(f"{type(e).__name__}: {' '.join(str(e).split())}") from e


def read_from(entry, sources_dir=None, hub_dir=None) -> dict | None:
    """Where the entry's rows come from: the local file, or the hub's (or mirror's) revision and files; None
    when it has none there."""
    if sources_dir is not None:
        path = local_file(entry, sources_dir)
        return {"file": str(path)} if path else None
    return _opened(hub.where, entry, hub_dir) if entry.get("hub") else None


def rows_of(entry, sources_dir=None, hub_dir=None):
    """(file, line, row, error) of one source; rows outside the entry's filter are skipped."""
    flt = entry.get("filter")
    if sources_dir is not None:
        path = local_file(entry, sources_dir)
        rows = ((str(path), n, row, err) for n, row, err in read_jsonl(path)) if path else iter(())
    elif entry.get("hub") is None:
        return
    else:
        rows = _opened(hub.rows, entry, hub_dir)
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


def with_layout(entry, rows):
    """(format, sampled rows it fits, rows): for a source whose layout is unverified, the format `detect` finds
    in its first DETECT_ROWS rows (a SourceError listing its columns when none fits); else the declared one."""
    if entry.get("layout") != "unverified":
        return entry["format"], None, rows
    head = list(islice(rows, DETECT_ROWS))
    sampled = [row for _, _, row, err in head if err is None]
    if not sampled:
        return entry["format"], None, chain(head, rows)
    fmt, n = detect(sampled, entry)
    if not n:
        seen = sorted({c for row in sampled for c in row})
        raise SourceError(f"no known layout fits its rows (declared {entry['format']}; columns {', '.join(seen)})")
    return fmt, f"{n}/{len(sampled)}", chain(head, rows)


def role_set(unified: dict) -> str:
    return ",".join(sorted({m["role"] for turns in unified.values() for m in turns}))


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
    layouts, roles, origin = {}, defaultdict(Counter), {}
    with Writer(out) as w:
        for entry in registry(blocks, variant, redteam):
            src = entry["name"]
            try:
                fmt, fit, rows = with_layout(entry, rows_of(entry, sources_dir, hub_dir))
                if src_from := read_from(entry, sources_dir, hub_dir):
                    origin[src] = src_from
                if fit:
                    layouts[src] = {"declared": entry["format"], "found": fmt, "fits": fit}
                fields = fields_of(entry, fmt)
                for path, n, row, err in rows:
                    rep.saw(src)
                    if err is None:
                        try:
                            unified = convert(row, fmt, fields)
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
                    roles[src][role_set(unified)] += 1
            except SourceError as e:
                failed[src] = f"{entry.get('hub')}: {e}"
                print(f"[normalize] source {src} could not be read: {failed[src]}", flush=True)
    result = rep.close(report_path)
    result["layouts"] = layouts
    result["role_sets"] = {src: dict(c) for src, c in roles.items()}
    result["read_from"] = origin
    lost = {
        src: {**c, "rate": round(sum(c["dropped"].values()) / c["in"], 4), "where": where[src]}
        for src, c in result["per_source"].items()
        if c["in"] and sum(c["dropped"].values()) / c["in"] > max_reject_rate
    }
    if failed:
        result["failed_sources"] = failed
    if lost:
        result |= {"lost_sources": lost, "max_reject_rate": max_reject_rate}
    Path(report_path).write_text(json.dumps(result, indent=2))
    return result


def layout_note(lay: dict) -> str:
    """ "declared X, found Y" (or the declared format confirmed), with the share of sampled rows it fits."""
    said = lay["found"] if lay["found"] == lay["declared"] else f"declared {lay['declared']}, found {lay['found']}"
    return f"{said} ({lay['fits']} sampled rows fit)"


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
    print({k: v for k, v in result.items() if k in ("step", "in", "out", "dropped", "failed_sources")})
    for src, lay in result["layouts"].items():
        print(f"[normalize] {src}: {layout_note(lay)}")
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
