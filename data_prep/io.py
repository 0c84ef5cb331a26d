"""Streaming JSONL, rejects and per-step reports shared by every data_prep step."""

import bisect
import codecs
import json
import os
from collections import Counter, defaultdict
from pathlib import Path

BOM_UTF16 = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _lines(path):
    """(line number, text or None, error or None): UTF-8 (a byte-order mark is dropped) or UTF-16 with its mark."""
    with open(path, "rb") as f:
        if f.read(2) in BOM_UTF16:
            f.seek(0)
            try:
                text = f.read().decode("utf-16")
            except UnicodeDecodeError as e:
                yield 1, None, f"invalid UTF-16 ({e.reason} at byte {e.start})"
                return
            yield from ((n, line, None) for n, line in enumerate(text.splitlines(keepends=True), 1))
            return
        f.seek(0)
        for n, raw in enumerate(f, 1):
            if n == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield n, raw.decode("utf-8"), None
            except UnicodeDecodeError as e:
                yield n, None, f"invalid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})"


def _record(n, value):
    if not isinstance(value, dict):
        return n, None, f"wrong type: a JSON {type(value).__name__}, not an object"
    return n, value, None


def _array(lines):
    """The records of a file holding one JSON array (as the hub serves .json files), element by element."""
    text = "".join(line for _, line, _ in lines)
    starts = [0]  # offset of each line, to name the line of an element
    for _, line, _ in lines[:-1]:
        starts.append(starts[-1] + len(line))
    dec, pos = json.JSONDecoder(), text.index("[") + 1
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        line = bisect.bisect_right(starts, pos)
        if pos >= len(text) or text[pos] == "]":
            return
        try:
            value, pos = dec.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            yield line, None, f"malformed JSON array ({e.msg}); the rest of the file is unread"
            return
        yield _record(line, value)


def _is_array(path) -> bool:
    with open(path, "rb") as f:
        head = f.read(4096)
    if head[:2] in BOM_UTF16:
        head = head.decode("utf-16", errors="ignore").encode()
    return head.removeprefix(codecs.BOM_UTF8).lstrip().startswith(b"[")


def read_jsonl(path):
    """Yield (line number, row or None, error or None) of a JSON Lines file, or of a file holding one JSON array.
    Nothing in the file raises: a line that is not UTF-8 or not a JSON object is reported with its reason."""
    lines = _lines(path)
    if _is_array(path):
        lines = list(lines)
        bad = [(n, err) for n, _, err in lines if err is not None]
        if not bad:
            yield from _array(lines)
            return
        yield bad[0][0], None, f"{bad[0][1]}; a JSON array with an unreadable line is unread"
        return
    for n, line, err in lines:
        if err is not None:
            yield n, None, err
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            yield n, None, f"malformed JSON ({e.msg})"
            continue
        yield _record(n, row)


class Writer:
    """A JSONL file written to a temporary name and renamed into place when closed without error."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.f = open(self.tmp, "w")
        self.n = 0

    def write(self, row):
        self.write_raw(json.dumps(row, ensure_ascii=False) + "\n")

    def write_raw(self, line: str):
        self.f.write(line)
        self.n += 1

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        self.f.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
        return False


class Report:
    """Counts in, out and dropped per source and reason, plus the rejects file (every dropped row and why)."""

    def __init__(self, step, rejects_path):
        self.step = step
        self.seen, self.kept = Counter(), Counter()
        self.dropped = defaultdict(Counter)
        self.changed = defaultdict(Counter)
        self.rejects = Writer(rejects_path)

    def saw(self, source):
        self.seen[source] += 1

    def keep(self, source):
        self.kept[source] += 1

    def drop(self, source, reason, row, **where):
        self.dropped[source][reason] += 1
        # ASCII-escaped: a rejected row may hold what UTF-8 cannot encode (a lone surrogate)
        self.rejects.write_raw(
            json.dumps({"step": self.step, "source": source, "reason": reason, **where, "row": row}) + "\n"
        )

    def route(self, writer, row, reason=None, **where):
        """Write the row, or drop it with the reason; either way it is counted."""
        if reason:
            self.drop(row["source"], reason, row, id=row["id"], **where)
        else:
            writer.write(row)
            self.keep(row["source"])

    def change(self, source, what):
        self.changed[source][what] += 1

    def close(self, path):
        self.rejects.__exit__(None)
        out = {
            "step": self.step,
            "in": sum(self.seen.values()),
            "out": sum(self.kept.values()),
            "dropped": sum(sum(c.values()) for c in self.dropped.values()),
            "per_source": {
                s: {
                    "in": self.seen[s],
                    "out": self.kept[s],
                    "dropped": dict(self.dropped[s]),
                    "changed": dict(self.changed[s]),
                }
                for s in sorted(self.seen)
            },
        }
        assert out["in"] == out["out"] + out["dropped"], f"{self.step}: rows unaccounted for"
        Path(path).write_text(json.dumps(out, indent=2))
        return out


def parallel_map(fn, items, chunksize=512):
    """fn over items on every core, in order (fn must be a module-level function)."""
    import multiprocessing as mp

    procs = os.cpu_count() or 1
    if procs == 1:
        yield from map(fn, items)
        return
    with mp.get_context("fork").Pool(procs) as pool:
        yield from pool.imap(fn, items, chunksize=chunksize)


def step_args(doc):
    """The CLI every step shares: --in, --out, --rejects, --report."""
    import argparse

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--in", dest="inp", required=True, help="input JSONL")
    ap.add_argument("--out", required=True, help="output JSONL")
    ap.add_argument("--rejects", required=True, help="JSONL of dropped rows with their reason")
    ap.add_argument("--report", required=True, help="JSON report of counts")
    return ap


def step_main(doc, run, argv=None):
    """The main() of a step that takes only --in, --out, --rejects and --report."""
    a = step_args(doc).parse_args(argv)
    print(run(a.inp, a.out, a.rejects, a.report))
