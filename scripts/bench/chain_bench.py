"""The smoke chain's wall and CPU use, cold and warm, with byte-code writing allowed and forbidden.

cold: a fresh runs root (every stage built, no Medprompt vector cache); warm: the same root again with
--force (every stage rebuilt; caches, byte-code and DeepSpeed's built ops in place). Each mode runs with
PYTHONDONTWRITEBYTECODE unset and set (`--bytecode`). The environments are used as `make install` left
them (their install compiles byte-code); a fresh machine adds `make install` (scripts/bench/install_bench.py).
Prints per run: wall, CPU use (children's user + system over wall, in % of one core; 200% = both cores),
and per stage its wall in the chain's console and the part spent inside its tool (the manifest's build wall);
the rest is the stage process's own start-up and checks.

  python -m scripts.bench.chain_bench [--recipe recipes/qwen2.5-aloe-beta-7b] [--modes cold warm] [--bytecode unset set]
"""

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository on the path
from scripts.core import ROOT, table  # noqa: E402
from scripts.lib import cli, stages  # noqa: E402
from scripts.lib import manifest as mf  # noqa: E402

ROW = re.compile(r"^(\S+)\s*\|\s*(\d+) s")  # a row of the smoke summary: stage | N s | ...


def smoke(recipe: str, runs: Path, force: bool, bytecode: str) -> dict:
    """One smoke run: wall, CPU %, and the summary's stage walls."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env |= {"PYTHONDONTWRITEBYTECODE": "1"} if bytecode == "set" else {}
    cmd = [sys.executable, "-m", "scripts.drivers.smoke", "--recipe", recipe, "--runs", str(runs)]
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    p = subprocess.run(cmd + (["--force"] if force else []), cwd=ROOT, env=env, capture_output=True, text=True)
    wall, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode not in (0, 1):  # 1: verify's verdict, still a finished chain
        sys.exit(f"smoke failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = p.stdout[p.stdout.rfind("smoke summary") :]
    stages = {m[1]: float(m[2]) for line in summary.splitlines() if (m := ROW.match(line))}
    return {"wall": wall, "cpu_pct": 100 * cpu / wall, "stages": stages}


def tool_walls(run: Path) -> dict:
    """Each stage's build wall from its manifest (the DPO runs summed into `dpo`)."""
    out = {}
    for m in filter(None, (mf.read(d) for d in [stages.folder("tiny-kit", run.parent, ""), *sorted(run.iterdir())])):
        out[m["stage"]] = m.get("wall_s") or 0.0
    out["dpo"] = sum(mf.read(d)["wall_s"] for d in sorted(stages.folder("dpo", run.parent, run.name).glob("0*")))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default=cli.DEFAULT_RECIPE)
    ap.add_argument("--runs", default=str(ROOT / "runs" / "bench-chain"), help="runs root, emptied first")
    ap.add_argument("--modes", nargs="+", choices=("cold", "warm"), default=["cold", "warm"])
    ap.add_argument("--bytecode", nargs="+", choices=("unset", "set"), default=["unset", "set"],
                    help="PYTHONDONTWRITEBYTECODE unset (byte-code written) or set (never written)")  # fmt: skip
    a = ap.parse_args(argv)
    runs = Path(a.runs).resolve()
    rows, detail = [], {}
    for bytecode in a.bytecode:
        for mode in a.modes:
            if mode == "cold":
                shutil.rmtree(runs, ignore_errors=True)
            print(f"[chain_bench] {mode}, PYTHONDONTWRITEBYTECODE {bytecode} ...", flush=True)
            r = smoke(a.recipe, runs, force=mode == "warm", bytecode=bytecode)
            (run,) = [d for d in runs.iterdir() if (d / "plan").is_dir()]
            detail[(mode, bytecode)] = (r["stages"], tool_walls(run))
            rows.append([mode, bytecode, f"{r['wall']:.0f} s", f"{r['cpu_pct']:.0f}%"])
            print(f"[chain_bench] {rows[-1]}", flush=True)
    print("\n" + table(["mode", "PYTHONDONTWRITEBYTECODE", "wall", "CPU (% of one core)"], rows))
    names = list(next(iter(detail.values()))[0])
    head = [f"{m}/{b}" for m, b in detail]
    print("\nper stage: wall in the chain (inside the tool)")
    print(table(["stage", *head], [[s, *(f"{st.get(s, 0):.0f} s ({tw.get(s, 0):.0f} s)" for st, tw in detail.values())]
                                   for s in names]))  # fmt: skip


if __name__ == "__main__":
    main()
