"""make contamination: which test questions of Table 9's benchmarks a model's training data holds (decontamination's
n-gram rule), and the model's accuracy on them and on the others, with a 95% interval for the difference
(data_prep/contamination.py, run in .venv/data). Prints the tables and writes
<runs>/contamination/<model>-<sources>.json (<model>: the folder lm-eval wrote the samples files in).

  python -m scripts.drivers.contamination --samples runs/eval/<model>/mcqa/lm_eval        # the authors' sources (hub)
  python -m scripts.drivers.contamination --samples DIR --sources upstream --hub-dir MIRROR
  python -m scripts.drivers.contamination --samples DIR --sources runs/<run>/data/work/normalize.jsonl
"""

import re
import sys
from pathlib import Path

from data_prep import contamination, normalize
from scripts import core
from scripts.core import AloeError
from scripts.lib import cli, stages, venv


def main(argv=None):
    ap = contamination.arguments(__doc__)
    ap.add_argument("--runs", default=str(core.ROOT / "runs"), help="root of run outputs (default runs/)")
    a = ap.parse_args(argv)
    files = contamination.samples_files(a.samples)  # a folder without samples fails before any training row is read
    registry = a.sources in normalize.VARIANTS
    if not registry and not Path(a.sources).is_file():
        raise AloeError(f"--sources {a.sources}: neither a source set ({', '.join(normalize.VARIANTS)}) nor a file")
    for flag, folder in (("--hub-dir", a.hub_dir), ("--sources-dir", a.sources_dir)):
        if folder and not Path(folder).is_dir():
            raise AloeError(f"{flag} {folder}: no such folder")
    name = "-".join(
        re.sub(r"[^A-Za-z0-9_.-]+", "_", part).lstrip(".") or "_"
        for part in (next(iter(files.values())).parent.name, Path(a.sources).stem)
    )
    out = stages.inside(a.runs, Path(a.runs) / "contamination" / f"{name}.json")
    cmd = ["python", "-m", "data_prep.contamination", "--samples", Path(a.samples).resolve(), "--out", out.resolve(),
           "--sources", a.sources if registry else Path(a.sources).resolve(),
           *(["--hub-dir", Path(a.hub_dir).resolve()] if a.hub_dir else []),
           *(["--sources-dir", Path(a.sources_dir).resolve()] if a.sources_dir else [])]  # fmt: skip
    online = venv.ONLINE if registry and not (a.hub_dir or a.sources_dir) else {}
    return venv.run("data", cmd, extra_env={"PYTHONPATH": str(core.ROOT), **online}).returncode


if __name__ == "__main__":
    sys.exit(cli.edge(main))
