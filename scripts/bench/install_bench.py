"""Install time per stage environment: uv from the lock with empty caches (cold) and with the machine's
caches (warm), against pip installing the same lock (`pip install --require-hashes --no-deps`, warm cache).

Builds into a temporary folder (the environments in .venv/ are not touched) and prints one table.

  python3 -m scripts.bench.install_bench [--stages data sft ...] [--no-pip]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: the repository on the path
from scripts.core import ROOT, table  # noqa: E402
from scripts.drivers import install  # noqa: E402
from scripts.lib import uv  # noqa: E402


def timed(cmd, env=None) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        cmd,
        cwd=ROOT,
        check=True,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def pip_install(stage: str, venvs: Path) -> float:
    """The same lock through pip, in the same two steps as scripts/drivers/install.py (late packages last)."""
    venv = venvs / f"pip-{stage}"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    pkgs, late = install.entries(install.lock_file(stage, False)), install.LATE.get(stage, {})
    secs = 0.0
    for names, flags, env in [
        ([k for k in pkgs if k not in late], [], install.BUILD_ENV.get(stage)),
        *(([k], ["--no-build-isolation"], e["cpu"]) for k, e in late.items()),
    ]:
        req = venvs / f"{stage}.req"
        req.write_text("\n".join(" \\\n".join(pkgs[k][1]) for k in names) + "\n")
        secs += timed(
            [venv / "bin" / "python", "-m", "pip", "install", "-q", "--require-hashes", "--no-deps", *flags, "-r", req],
            env,
        )
    return secs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stages", nargs="*", default=install.STAGES)
    ap.add_argument("--no-pip", action="store_true", help="skip the pip comparison")
    a = ap.parse_args(argv)
    uv.bootstrap()
    rows, totals = [], [0.0, 0.0, 0.0]
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as cache:
        tmp = Path(tmp)
        for stage in a.stages:
            build = [sys.executable, "-m", "scripts.drivers.install", stage]
            cold = timed([*build, "--venvs", tmp / "cold"], {"UV_CACHE_DIR": cache})
            warm = timed([*build, "--venvs", tmp / "warm"])
            pip = None if a.no_pip or stage == "base" else pip_install(stage, tmp)
            n = len(install.entries(install.lock_file(stage, False)))
            rows.append([stage, n, f"{cold:.0f}", f"{warm:.0f}", "-" if pip is None else f"{pip:.0f}"])
            totals = [totals[0] + cold, totals[1] + warm, totals[2] + (pip or 0)]
            print(
                f"[bench] {stage}: cold {cold:.0f} s, warm {warm:.0f} s" + (f", pip {pip:.0f} s" if pip else ""),
                flush=True,
            )
    rows.append(
        [
            "all",
            sum(r[1] for r in rows),
            f"{totals[0]:.0f}",
            f"{totals[1]:.0f}",
            "-" if a.no_pip else f"{totals[2]:.0f}",
        ]
    )
    print(table(["env", "packages", "uv cold s", "uv warm s", "pip warm s"], rows))


if __name__ == "__main__":
    main()
