"""Step a: read every source of the registry and write one conversation schema.

SFT rows:        {id, source, block, task, messages: [{role, content}], meta}
preference rows: {id, source, block, task, prompt: [msgs], chosen: [msgs], rejected: [msgs]}
Formats (data_prep/sources.yaml `format`): alpaca (instruction, input, output), sharegpt (conversations of
{from, value}), messages, qa (question/answer columns, renamable with `fields`), mcqa_cot (question and a
chain-of-thought answer), preference (prompt, chosen, rejected as text or messages). A record that does not
fit its format goes to the rejects with the file, line and reason.

  python -m data_prep.normalize --sources-dir DIR --out normalized.jsonl --rejects r.jsonl --report r.json
  (reads DIR/<name>.jsonl for every registry entry present there; without --sources-dir, the hub)
"""
import argparse
from pathlib import Path

import yaml

from .io import Report, Writer, read_jsonl

REGISTRY = Path(__file__).with_name("sources.yaml")
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system",
         "chatgpt": "assistant", "bing": "assistant", "model": "assistant"}
DEFAULT_FIELDS = {"qa": {"question": "question", "answer": "answer"},
                  "mcqa_cot": {"question": "question", "answer": "response"}}


class Malformed(ValueError):
    pass


def registry(blocks=None):
    reg = yaml.safe_load(REGISTRY.read_text())
    return [dict(e, block=b) for b, entries in reg.items() if not blocks or b in blocks for e in entries]


def _text(row, key):
    if key not in row or row[key] is None:
        raise Malformed(f"missing field {key!r}")
    if not isinstance(row[key], str):
        raise Malformed(f"wrong type: {key!r} is {type(row[key]).__name__}, not text")
    return row[key]


def _turns(value, key):
    if isinstance(value, str):
        return [{"role": "assistant" if key != "prompt" else "user", "content": value}]
    if isinstance(value, list) and all(isinstance(m, dict) and "content" in m for m in value):
        return [{"role": m.get("role", "user"), "content": m["content"]} for m in value]
    raise Malformed(f"wrong type: {key!r} is neither text nor a list of messages")


def convert(row: dict, fmt: str, fields: dict | None = None) -> dict:
    """The unified fields of one record (messages, or prompt/chosen/rejected)."""
    if fmt == "alpaca":
        user = _text(row, "instruction") + (("\n\n" + row["input"]) if row.get("input") else "")
        return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": _text(row, "output")}]}
    if fmt == "sharegpt":
        conv = row.get("conversations")
        if not isinstance(conv, list) or not conv:
            raise Malformed("missing field 'conversations'" if conv is None else "wrong type: 'conversations'")
        msgs = []
        for turn in conv:
            if not isinstance(turn, dict) or turn.get("from") not in ROLES or not isinstance(turn.get("value"), str):
                raise Malformed(f"malformed turn {str(turn)[:80]}")
            msgs.append({"role": ROLES[turn["from"]], "content": turn["value"]})
        return {"messages": msgs}
    if fmt == "messages":
        return {"messages": _turns(row.get("messages"), "messages")}
    if fmt in ("qa", "mcqa_cot"):
        f = {**DEFAULT_FIELDS[fmt], **(fields or {})}
        question = _text(row, f["question"])
        if fmt == "mcqa_cot" and isinstance(row.get("options"), (dict, list)):
            opts = row["options"].items() if isinstance(row["options"], dict) else zip("ABCDE", row["options"])
            question += "\n" + "\n".join(f"{k}. {v}" for k, v in opts)
        return {"messages": [{"role": "user", "content": question},
                             {"role": "assistant", "content": _text(row, f["answer"])}]}
    if fmt == "preference":
        return {k: _turns(row.get(k), k) for k in ("prompt", "chosen", "rejected")}
    raise Malformed(f"unknown format {fmt!r}")


def rows_of(entry, sources_dir):
    """(file, line, row, error) of one source: a local <name>.jsonl, or the hub (streamed)."""
    if sources_dir is not None:
        path = Path(sources_dir) / f"{entry['name']}.jsonl"
        if not path.exists():
            return
        for n, row, err in read_jsonl(path):
            yield str(path), n, row, err
    else:
        import datasets
        ds = datasets.load_dataset(entry["hub"], entry.get("config"), split=entry["split"], streaming=True)
        for n, row in enumerate(ds, 1):
            yield entry["hub"], n, row, None


def run(out, rejects, report_path, sources_dir=None, blocks=None):
    rep = Report("normalize", rejects)
    with Writer(out) as w:
        for entry in registry(blocks):
            src = entry["name"]
            for path, n, row, err in rows_of(entry, sources_dir):
                rep.saw(src)
                if err is None:
                    try:
                        unified = convert(row, entry["format"], entry.get("fields"))
                    except Malformed as e:
                        err = str(e)
                if err:
                    rep.drop(src, err.split(" (")[0].split(":")[0], row, file=path, line=n, detail=err)
                    continue
                w.write({"id": f"{src}:{n}", "source": src, "block": entry["block"], "task": entry["task"],
                         "needs_prompt": entry.get("needs_prompt", False), **unified})
                rep.keep(src)
    return rep.close(report_path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources-dir", help="folder of <source name>.jsonl files (default: the hub)")
    ap.add_argument("--blocks", nargs="*", help="only these registry blocks")
    ap.add_argument("--out", required=True)
    ap.add_argument("--rejects", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--peek", action="store_true", help="print the first row of every source and exit")
    a = ap.parse_args(argv)
    if a.peek:
        for entry in registry(a.blocks):
            first = next(rows_of(entry, a.sources_dir), None)
            print(entry["name"], entry["format"], sorted(first[2]) if first and first[2] else first)
        return
    print(run(a.out, a.rejects, a.report, a.sources_dir, a.blocks))


if __name__ == "__main__":
    main()
