"""`make contamination`: the test questions of Table 9's benchmarks that a model's training data holds, and the
model's accuracy on them and on the others: decontamination (data_prep/decontaminate.py) the other way round.

A test question overlaps the training data by decontamination's own rule (decontaminate.TestIndex): it shares a word
8-gram with the user turns of a training row, or, under 8 words, is contained in them whole. The training data: a
source set of data_prep/sources.yaml read as normalize reads it (from the hub, a folder laid out like it, or local
<source>.jsonl files), or a JSONL in normalize's row schema that `make data` wrote (work/normalize.jsonl; a row
without `id` or `source` is named after the file and line). A source row that does not convert is not training
data: it is counted per source as skipped. The questions and the model's answers: lm-eval's --log_samples files in an
eval output folder, samples_<task>_<date>.jsonl with one line per question ({doc_id, doc, acc, ...}, `doc` in the
benchmark's own schema), the newest file of each task.

Per benchmark (MMLU: the six medical subjects pooled, question by question), the accuracy on the clean and on the
overlapping questions, and the difference overlapping minus clean with its 95% interval: Newcombe's hybrid score
interval (Newcombe 1998, Stat Med 17:873, method 10: from the two Wilson score intervals, no continuity
correction). Also the overlapping questions per benchmark and source, with example pairs (decontaminate.Matrix).

  python -m data_prep.contamination --samples DIR --out report.json [--sources authors|upstream|FILE.jsonl]
                                    [--sources-dir DIR | --hub-dir DIR]
"""

import argparse
import math
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from scripts.core import AloeError, table, write_json_atomic

from . import benchmarks, normalize
from .decontaminate import Matrix, N, TestIndex, benchmark_of, matrix_tables, user_text

SAMPLES = re.compile(r"samples_(.+)_\d{4}-\d\d-\d\dT[\d.-]+\.jsonl$")  # lm-eval's samples_<task>_<date>.jsonl
TABLE9 = ["medqa_4options", "medmcqa", "pubmedqa", "mmlu_medical", "careqa_en"]  # its columns, in the paper's order
Z95 = 1.959963984540054
RULE = f"a word {N}-gram shared with a training row's user turns; a question under {N} words: contained whole"
INTERVAL = "Newcombe's hybrid score interval (1998, method 10) of the accuracy overlapping minus clean"


class ContaminationError(AloeError, ValueError):
    pass


@dataclass
class Sample:
    task: str
    id: str  # <task>:<the benchmark's question id>
    question: str
    correct: bool


def samples_files(folder) -> dict:
    """{task: the newest samples file} of the Table 9 tasks under an lm-eval output folder (one model's)."""
    if not Path(folder).is_dir():
        raise ContaminationError("no such folder (an lm-eval output folder, written with --log_samples)", file=folder)
    files = {}
    for f in sorted(Path(folder).rglob("samples_*.jsonl")):  # the date in the name sorts them: the newest last
        m = SAMPLES.search(f.name)
        if m and benchmarks.column_task(m[1]) in benchmarks.TASKS:
            files[benchmarks.column_task(m[1])] = f
    if not files:
        raise ContaminationError(
            f"no lm-eval samples file (samples_<task>_<date>.jsonl) of {', '.join(benchmarks.TASKS)}", file=folder
        )
    runs = sorted({str(f.parent) for f in files.values()})
    if len(runs) > 1:
        raise ContaminationError(f"samples of several runs ({', '.join(runs)}): give the folder of one", file=folder)
    return files


def read_samples(files: dict) -> list:
    """The Samples of every file; a line that is not one (no doc in the task's schema, acc not 0 or 1) is an error
    naming the file and the line."""
    out = []
    for task, f in sorted(files.items()):
        convert = benchmarks.SOURCES[task][4]
        for n, s in benchmarks.read_jsonl(f):
            try:
                q, acc = convert(s["doc"], s["doc_id"]), s["acc"]
            except (KeyError, ValueError, TypeError, IndexError) as e:
                raise ContaminationError(f"not an lm-eval sample of {task} ({type(e).__name__}: {e})", f, n) from None
            if acc not in (0, 1):
                raise ContaminationError(f"acc is {acc!r}, not 0 or 1", f, n)
            out.append(Sample(task, f"{task}:{q.id}", q.question, acc == 1))
    return out


def training_rows(sources: str, read: Counter, skipped: Counter, sources_dir=None, hub_dir=None):
    """(row id, source, user text) of every training row, counted in `read` by source: of a source set of the
    registry (a row normalize would reject is counted in `skipped` instead), or of a JSONL in normalize's schema (a
    row that is not one is an error naming the file and the line)."""
    if sources not in normalize.VARIANTS:
        stem = Path(sources).stem
        for n, row in benchmarks.read_jsonl(sources):
            try:
                row_id, src, text = row.get("id", f"{stem}:{n}"), row.get("source", stem), user_text(row)
            except (KeyError, TypeError) as e:
                raise ContaminationError(f"not a training row: no messages or prompt turns ({e})", sources, n) from None
            read[src] += 1
            yield row_id, src, text
        return
    for entry in normalize.registry(variant=sources):
        src = entry["name"]
        try:
            fmt, _, rows = normalize.with_layout(entry, normalize.rows_of(entry, sources_dir, hub_dir))
            fields = normalize.fields_of(entry, fmt)
            for _, n, row, err in rows:
                try:
                    if err:
                        raise normalize.Malformed(err)
                    unified = normalize.convert(row, fmt, fields)
                except (normalize.Malformed, UnicodeEncodeError):
                    skipped[src] += 1
                    continue
                read[src] += 1
                yield f"{src}:{n}", src, user_text(unified)
        except normalize.SourceError as e:
            raise ContaminationError(f"source {src} ({entry.get('hub')}) could not be read: {e}") from None
        print(f"[contamination] {src}: {read[src]} rows searched, {skipped[src]} skipped", file=sys.stderr, flush=True)


def wilson(k: int, n: int, z: float = Z95) -> tuple:
    """The Wilson score interval of k successes in n."""
    p, q = k / n, z * z / n
    mid, half = (p + q / 2) / (1 + q), z / (1 + q) * math.sqrt(p * (1 - p) / n + q / (4 * n))
    return mid - half, mid + half


def newcombe(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> tuple:
    """(p1 - p2, low, high): the difference of two proportions and its hybrid score interval (Newcombe's method 10)."""
    p1, p2 = k1 / n1, k2 / n2
    (l1, u1), (l2, u2) = wilson(k1, n1, z), wilson(k2, n2, z)
    d = p1 - p2
    return d, d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def split(samples: list, first: dict) -> dict:
    """One benchmark's questions: the accuracy on the clean and on the overlapping ones (those in `first`, the first
    training row holding each), and the difference overlapping minus clean."""
    parts = {"clean": [s for s in samples if s.id not in first], "overlapping": [s for s in samples if s.id in first]}
    out = {"questions": len(samples)}
    for name, part in parts.items():
        k = sum(s.correct for s in part)
        out[name] = {"n": len(part), "correct": k, "acc": k / len(part) if part else None}
    o, c = out["overlapping"], out["clean"]
    d, lo, hi = newcombe(o["correct"], o["n"], c["correct"], c["n"]) if o["n"] and c["n"] else (None, None, None)
    return out | {
        "difference": d,
        "ci95": None if d is None else [lo, hi],
        "overlapping_questions": {s.id: first[s.id] for s in parts["overlapping"]},
    }


def run(samples_dir, out, sources="authors", sources_dir=None, hub_dir=None) -> dict:
    files = samples_files(samples_dir)
    samples = read_samples(files)
    index = TestIndex([s.question for s in samples])
    matrix, seen, first, read, skipped = Matrix(), set(), {}, Counter(), Counter()
    for row_id, src, text in training_rows(sources, read, skipped, sources_dir, hub_dir):
        for qi in index.matches(text):
            s = samples[qi]
            first.setdefault(s.id, row_id)
            if (s.id, src) not in seen:  # the matrix counts a question once per source
                seen.add((s.id, src))
                matrix.add(benchmark_of(s.task), src, row_id, text, s.id, s.question)
    report = {
        "samples": {t: str(f) for t, f in files.items()},
        "training": {"sources": sources, "rows": dict(sorted(read.items())), "skipped": dict(sorted(skipped.items()))},
        "rule": RULE,
        "interval": INTERVAL,
        "benchmarks": {
            b: split(mine, first) for b in TABLE9 if (mine := [s for s in samples if benchmark_of(s.task) == b])
        },
        "matrix": matrix.report(),
    }
    write_json_atomic(out, report)
    return report


HEADERS = ["benchmark", "questions", "overlapping", "acc clean", "acc overlapping", "overlapping - clean", "95% CI"]


def _acc(part: dict) -> str | None:
    return None if part["acc"] is None else f"{part['acc']:.3f} ({part['correct']}/{part['n']})"


def tables(report: dict) -> str:
    """The report as tables: per benchmark, then per benchmark and source, then the sources' skipped rows."""
    rows = [
        [b, x["questions"], x["overlapping"]["n"], _acc(x["clean"]), _acc(x["overlapping"]),
         None if x["difference"] is None else f"{x['difference']:+.3f}",
         None if x["ci95"] is None else "[{:+.3f}, {:+.3f}]".format(*x["ci95"])]
        for b, x in report["benchmarks"].items()
    ]  # fmt: skip
    t = report["training"]
    out = (f"test questions the training data ({t['sources']}) holds, by decontamination's rule ({RULE}):\n"
           f"{table(HEADERS, rows)}\n95% CI: {INTERVAL}")  # fmt: skip
    if report["matrix"]["counts"]:
        out += f"\n\noverlapping test questions per benchmark and source:\n{matrix_tables(report['matrix'])}"
    if t["skipped"]:
        out += "\n\nsource rows that do not convert, not searched: " + ", ".join(
            f"{src} {n} of {n + t['rows'].get(src, 0)}" for src, n in t["skipped"].items()
        )
    return out


def arguments(doc: str) -> argparse.ArgumentParser:
    """The options this report and `make contamination` share: the samples and the training data."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", required=True, help="an lm-eval output folder holding samples_<task>_<date>.jsonl")
    ap.add_argument(
        "--sources",
        default="authors",
        help="the training data: a source set of data_prep/sources.yaml (authors | upstream; default authors), or a "
        "JSONL `make data` wrote (normalize's row schema)",
    )
    ap.add_argument("--sources-dir", help="local <source>.jsonl files (default: the hub)")
    ap.add_argument("--hub-dir", help="a folder laid out like the hub, <owner>/<repo> (default: the hub)")
    return ap


def main(argv=None):
    ap = arguments(__doc__)
    ap.add_argument("--out", required=True, help="the JSON report (written atomically)")
    a = ap.parse_args(argv)
    try:
        report = run(a.samples, a.out, a.sources, a.sources_dir, a.hub_dir)
    except AloeError as e:
        raise SystemExit(f"[contamination] {e}") from None
    print(f"{tables(report)}\n\nwritten: {a.out}")


if __name__ == "__main__":
    main()
