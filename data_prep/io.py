"""Streaming JSONL, rejects and per-step reports shared by every data_prep step."""
import json
import os
from collections import Counter, defaultdict
from pathlib import Path


def read_jsonl(path):
    """Yield (line number, row or None, error or None): a broken line is reported, never raised."""
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                yield n, None, f"malformed JSON ({e.msg})"
                continue
            if not isinstance(row, dict):
                yield n, None, f"wrong type: a JSON {type(row).__name__}, not an object"
                continue
            yield n, row, None


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
        self.rejects.write({"step": self.step, "source": source, "reason": reason, **where, "row": row})

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
        out = {"step": self.step, "in": sum(self.seen.values()), "out": sum(self.kept.values()),
               "dropped": sum(sum(c.values()) for c in self.dropped.values()),
               "per_source": {s: {"in": self.seen[s], "out": self.kept[s], "dropped": dict(self.dropped[s]),
                                  "changed": dict(self.changed[s])} for s in sorted(self.seen)}}
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
