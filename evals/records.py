"""Append-only JSONL records that survive a kill: the stage resumes from what is on disk."""

import json
from pathlib import Path


def resume(path: Path) -> list:
    """The records already written. A last line cut by a kill is removed first, so that the records
    appended next start on a line of their own; a line that is not JSON is skipped (regenerated)."""
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


def append(path: Path, recs: list):
    with open(path, "a") as f:
        f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
        f.flush()


def write(path: Path, recs: list):
    Path(path).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
