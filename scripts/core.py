"""The core layer: what every other layer may use and that imports nothing of ours (the standard library only, so
that it loads in every stage environment too): the repository root, content hashes, atomic JSON and append-only
JSONL, plain-text tables, and the one error type (`AloeError`, naming the file, line and key it is about).

Layers (checked by `make lint`, .importlinter): scripts.drivers -> the stage entry points -> scripts.lib ->
evals -> medprompt -> data_prep -> scripts.core.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class AloeError(Exception):
    """The one error the kit's code raises: what went wrong, and where (file, line, key) when it is about one.
    Only a command-line edge (`scripts.lib.cli.main`) turns it into an exit status."""

    def __init__(self, message: str, file=None, line: int | None = None, key: str | None = None):
        self.message, self.file, self.line, self.key = message, file, line, key
        where = ":".join(str(x) for x in (file, line) if x is not None)
        super().__init__(" ".join(x for x in (f"{where}:" if where else "", f"{key}:" if key else "", message) if x))


def sha256_path(p) -> str:
    """Content hash of a file, or of a directory (relative names + contents, sorted)."""
    p = Path(p)
    h = hashlib.sha256()
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    for f in files:
        if p.is_dir():
            h.update(str(f.relative_to(p)).encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def sha256_json(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def write_json_atomic(path, obj):
    """Write JSON through a sibling temporary file and a rename: a reader sees the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path):
    """A JSON file, or an AloeError naming it (a truncated or hand-edited file is not a traceback)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AloeError(f"not readable JSON ({e})", file=path)


# Append-only JSONL records that survive a kill: a stage resumes from what is on disk.
def resume_jsonl(path) -> list:
    """The records already written. A last line cut by a kill is removed first, so that the records appended next
    start on a line of their own; a line that is not JSON is skipped (regenerated)."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def append_jsonl(path, recs: list):
    with open(path, "a") as f:
        f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
        f.flush()


def write_jsonl(path, recs):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))


@contextlib.contextmanager
def locked(path, waiting: str = ""):
    """Hold an exclusive lock on `path` (created) for the block; print `waiting` first if another process holds it.
    The kernel drops the lock when its holder dies, so a killed process never leaves one behind."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                print(waiting, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def git_sha() -> str:
    """The repository commit ("-dirty" when tracked files changed), "unknown" outside a checkout."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"


# Plain-text tables for terminal summaries (and the same rows as markdown).
def _cell(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def table(headers, rows) -> str:
    cells = [[_cell(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def fmt(r):
        return " | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()

    return "\n".join([fmt(headers), "-+-".join("-" * w for w in widths), *(fmt(r) for r in cells)])


def markdown(headers, rows) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(out)
