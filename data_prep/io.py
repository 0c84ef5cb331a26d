"""Streaming JSONL, rejects and per-step reports shared by every data_prep step."""

import codecs
import json
import os
import re
from collections import Counter, defaultdict
from pathlib import Path

BOM_UTF16 = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
CHUNK = 1 << 18  # bytes of a JSON-array file read at a time; reading holds ~13x this at most (4-byte text)
NEAR_END = 32  # a JSON error this close to the end of the text read so far may be an element cut by it
SPACE, SEPARATORS = re.compile(r"[ \t\r\n]*"), re.compile(r"[ \t\r\n,]*")


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


class _Text:
    """The text of a file decoded chunk by chunk: `text[pos:]` is what is not consumed yet, `line` the line at pos.
    UTF-8 (a byte-order mark is dropped) or UTF-16 with its mark; a byte that does not decode ends the text there."""

    def __init__(self, f, chunk: int):
        self.f, self.chunk = f, chunk
        self.decoder = codecs.getincrementaldecoder("utf-16" if f.read(2) in BOM_UTF16 else "utf-8-sig")()
        f.seek(0)
        self.text, self.pos, self.line, self.done, self.error = "", 0, 1, False, None

    def advance(self, to: int):
        self.line += self.text.count("\n", self.pos, to)
        self.pos = to

    def more(self) -> bool:
        """Drop the consumed text and read on: a chunk, or as much as is held (doubling it while one element is
        incomplete); False once the end of the file or an undecodable byte was reached."""
        if self.done:
            return False
        held, self.text, self.pos = self.text[self.pos :], "", 0  # the consumed text is freed first
        data = self.f.read(max(self.chunk, len(held)))
        try:
            new = self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as e:
            new = e.object[: e.start].decode(e.encoding)  # the text before the byte
            name = "UTF-16" if "16" in e.encoding else "UTF-8"
            self.error = f"invalid {name} (byte 0x{e.object[e.start]:02x}); the rest of the file is unread"
        self.done = not data or self.error is not None
        self.text = held + new if held else new
        return True

    def skip(self, pattern) -> bool:
        """Move past what matches pattern, reading on as needed; False at the end of the text."""
        while True:
            self.advance(pattern.match(self.text, self.pos).end())
            if self.pos < len(self.text) or not self.more():
                return self.pos < len(self.text)


def _array(t: _Text):
    """The records of a file holding one JSON array (as the hub serves .json files), element by element."""
    dec = json.JSONDecoder()
    t.skip(SPACE)
    t.advance(t.pos + 1)  # the opening bracket (read_jsonl checked it is there)
    while True:
        if not t.skip(SEPARATORS):
            yield t.line, None, t.error or "malformed JSON array (the file ends before its closing bracket)"
            return
        if t.text[t.pos] == "]":
            return
        try:
            value, end = dec.raw_decode(t.text, t.pos)
        except json.JSONDecodeError as e:
            # an element cut by the end of the text read so far fails there (or in its last string): read on
            if (e.pos >= len(t.text) - NEAR_END or e.msg.startswith("Unterminated string")) and t.more():
                continue
            if t.error:
                yield t.line + t.text.count("\n", t.pos), None, t.error
            else:
                yield t.line, None, f"malformed JSON array ({e.msg}); the rest of the file is unread"
            return
        if end == len(t.text) and t.more():  # a number may go on in the next chunk
            continue
        yield _record(t.line, value)
        t.advance(end)


def _is_array(path) -> bool:
    with open(path, "rb") as f:
        head = f.read(4096)
    if head[:2] in BOM_UTF16:
        head = head.decode("utf-16", errors="ignore").encode()
    return head.removeprefix(codecs.BOM_UTF8).lstrip().startswith(b"[")


def read_jsonl(path, chunk: int = CHUNK):
    """Yield (line number, row or None, error or None) of a JSON Lines file, or of a file holding one JSON array.
    Nothing in the file raises: a line that is not UTF-8 or not a JSON object is reported with its reason. An
    array is read `chunk` bytes at a time (memory: a chunk plus the largest element); a malformed element or
    an undecodable byte in it is reported at its line and ends the file, the rows before it are yielded."""
    if _is_array(path):
        with open(path, "rb") as f:
            yield from _array(_Text(f, chunk))
        return
    lines = _lines(path)
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
