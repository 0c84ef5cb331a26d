"""JSON-array reading benchmark (issue 24): data_prep.io.read_jsonl on a generated JSON-array file of --size-gb
(default 2, about half the authors' MedS-Ins.json), each reader in its own process (rows/s, MB/s, the process's
peak RSS and its growth while reading). The whole-file readers it replaces, json.load and `datasets`' json
streaming (which loads an array whole, .venv/data), need memory several times the file size, so they are
compared with read_jsonl on a smaller file of --compare-mb (default 257: one Aloe-Beta-DPO chunk).
Then `make data-check` on a fixture hub mirror whose MedS-Ins.json is that file (peak RSS; goal under 1 GB).
Goal: memory that does not grow with the file.

  python -m scripts.bench.json_read_bench [--size-gb 2] [--compare-mb 257] [--dir DIR]
The file: sharegpt rows as the authors' copies hold them (two turns of about 250 words, some non-ASCII), indented
as data_prep/fixtures.py writes a mirror's .json files; in a temporary folder under runs/, removed (--dir: kept).
"""

import argparse
import json
import random
import shutil
import tempfile
from pathlib import Path

from data_prep.io import CHUNK
from scripts.core import ROOT, table
from scripts.lib import venv

WORDS = "patient fever insulin renal biopsy dose anemia stroke ulcer fièvre 肾脏 naïve cœur".split()
READERS = {"read_jsonl": "base", "json.load": "base", "datasets streaming": "data"}
CHECK = """
import json, sys, time
from data_prep import check
t0 = time.perf_counter()
rc = check.main(["--hub-dir", sys.argv[1]])
peak = int(next(x for x in open("/proc/self/status") if x.startswith("VmHWM:")).split()[1]) * 1024
print(json.dumps({"rc": rc, "s": time.perf_counter() - t0, "peak": peak}))
"""
CHILD = """
import json, sys, time
method, path = sys.argv[1:3]
if method == "datasets streaming":
    import datasets
from data_prep.io import read_jsonl
def peak():  # this process's own peak RSS (ru_maxrss would count the parent's at the fork)
    return int(next(x for x in open("/proc/self/status") if x.startswith("VmHWM:")).split()[1]) * 1024
base, t0 = peak(), time.perf_counter()
if method == "read_jsonl":
    n = sum(row is not None for _, row, _ in read_jsonl(path))
elif method == "json.load":
    with open(path) as f:
        n = len(json.load(f))
else:
    n = sum(1 for _ in datasets.load_dataset("json", data_files=path, split="train", streaming=True))
print(json.dumps({"rows": n, "s": time.perf_counter() - t0, "peak": peak(), "grew": peak() - base}))
"""


def generate(path: Path, size: int, seed=0) -> int:
    """A JSON array of sharegpt rows of about `size` bytes, written element by element; its row count."""
    rnd = random.Random(seed)
    pool = [" ".join(rnd.choices(WORDS, k=250)) for _ in range(64)]
    n, written = 0, 0
    with open(path, "wb") as f:
        f.write(b"[\n")
        while written < size:
            turns = [{"from": "human", "value": rnd.choice(pool)}, {"from": "gpt", "value": rnd.choice(pool)}]
            row = json.dumps({"conversations": turns}, indent=1, ensure_ascii=False)
            written += f.write((",\n" if n else "").encode() + row.encode())
            n += 1
        f.write(b"\n]\n")
    return n


def measure(method: str, path: Path, rows: int) -> list:
    p = venv.run(
        READERS[method], ["python", "-c", CHILD, method, path], extra_env={"PYTHONPATH": str(ROOT)}, capture=True
    )
    if p.returncode:
        raise SystemExit(f"{method} failed on {path}:\n{p.stderr[-2000:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    if r["rows"] != rows:
        raise SystemExit(f"{method} read {r['rows']} rows of {rows} in {path}")
    mb = path.stat().st_size / 2**20
    return [method, f"{mb:,.0f}", f"{rows:,}", f"{r['s']:.1f}", f"{rows / r['s']:,.0f}", f"{mb / r['s']:,.0f}",
            f"{r['peak'] / 2**20:,.0f}", f"{r['grew'] / 2**20:,.0f}", f"{r['grew'] / 2**20 / mb:.2f}"]  # fmt: skip


def data_check(big: Path, hub: Path) -> str:
    """`make data-check` (all sources, first rows) on a fixture mirror whose MedS-Ins.json is the big file."""
    env = {"PYTHONPATH": str(ROOT)}
    venv.run("data", ["python", "-m", "data_prep.fixtures", "--hub-dir", hub], extra_env=env, capture=True)
    shutil.move(big, hub / "HPAI-BSC/MedS-Ins/MedS-Ins.json")
    p = venv.run("data", ["python", "-c", CHECK, hub], extra_env=env, capture=True)
    r = json.loads(p.stdout.strip().splitlines()[-1])
    if r["rc"]:
        raise SystemExit(f"data-check failed on the mirror {hub}:\n{p.stdout[-2000:]}")
    mb = (hub / "HPAI-BSC/MedS-Ins/MedS-Ins.json").stat().st_size / 2**20
    return f"make data-check on a mirror whose MedS-Ins.json is {mb:,.0f} MB: all ok in {r['s']:.1f} s, peak RSS {r['peak'] / 2**20:,.0f} MB"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-gb", type=float, default=2.0, help="the file read_jsonl reads (default 2)")
    ap.add_argument("--compare-mb", type=float, default=257, help="the file every reader reads (default 257)")
    ap.add_argument("--dir", help="write the files here (default: a temporary folder under runs/, removed)")
    a = ap.parse_args(argv)
    (ROOT / "runs").mkdir(exist_ok=True)
    d = Path(a.dir or tempfile.mkdtemp(prefix="json-read-bench-", dir=ROOT / "runs"))
    d.mkdir(parents=True, exist_ok=True)
    try:
        big, small = d / "big.json", d / "small.json"
        rows = [measure("read_jsonl", big, generate(big, int(a.size_gb * 2**30)))]
        check = data_check(big, d / "hub")
        n = generate(small, int(a.compare_mb * 2**20))
        rows += [measure(method, small, n) for method in READERS]
    finally:
        if not a.dir:
            shutil.rmtree(d, ignore_errors=True)
    headers = ["reader", "file MB", "rows", "s", "rows/s", "MB/s", "peak RSS MB", "RSS growth MB", "growth / file"]
    print(f"JSON-array reading, each reader in its own process (read_jsonl reads {CHUNK // 1024} KiB at a time)")
    print(table(headers, rows))
    print(check)


if __name__ == "__main__":
    main()
