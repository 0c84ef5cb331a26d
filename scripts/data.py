"""Stage data: the training-ready files of a recipe, by the data_prep pipeline (in .venv/data).

  python -m scripts.data --recipe recipes/aloe-beta-8b            # the published sources, from the hub
  python -m scripts.data --sources upstream                        # the original releases instead of the copies
  python -m scripts.data --profile cpu-tiny --fixtures            # offline: data_prep/fixtures.py corpora
With --fixtures it also writes the local evaluation fixtures (each benchmark's schema) and a small
Medprompt CoT database. Outputs: the data stage's (scripts/lib/stages.py), recorded in the manifest.
"""

import json
import sys
from pathlib import Path

from data_prep import eval_fixtures
from scripts import core
from scripts.core import sha256_json, table
from scripts.lib import cli, stages, venv
from scripts.lib.manifest import Stage


def write_jsonl(path: Path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def main(argv=None):
    ap = cli.stage_parser(__doc__)
    ap.add_argument("--fixtures", action="store_true", help="offline fixture corpora instead of the hub")
    ap.add_argument(
        "--sources",
        default="authors",
        choices=("authors", "upstream"),
        help="source set of data_prep/sources.yaml (default: the authors' processed copies)",
    )
    ap.add_argument("--hub-dir", help="a folder laid out like the hub, <owner>/<repo> (default: the hub)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    r = cli.load(a)
    dpo = {s["name"]: s for s in r.files["dpo"]["stages"]}
    chunks, redteam = dpo["stage1"]["chunks"], dpo["stage2"].get("config")
    spec = {"fixtures": a.fixtures, "sources": a.sources, "seed": a.seed, "chunks": chunks, "redteam": redteam}
    st = Stage(
        stages.folder("data", a.runs, r.name),
        "data",
        {"path": "data_prep/sources.yaml", "sha256": sha256_json(spec), "rendered": spec},
        {},
        a.force,
        seed=a.seed,
        env="data",
        code=[core.ROOT / "data_prep"],
    )
    if st.skip():
        return 0
    with st:
        p = st.partial
        pipeline = [
            "--work",
            p / "work",
            "--out-dir",
            p,
            "--seed",
            a.seed,
            "--chunks",
            chunks,
            "--sources",
            a.sources,
            *(["--hub-dir", Path(a.hub_dir).resolve()] if a.hub_dir else []),
            *(["--redteam", redteam] if redteam else []),
        ]
        if a.fixtures:
            for task in eval_fixtures.FIXTURES:
                write_jsonl(p / "eval" / f"{task}.jsonl", eval_fixtures.rows(task, a.seed))
            write_jsonl(p / "medprompt" / "database.jsonl", eval_fixtures.cot_database(seed=a.seed))
            question = eval_fixtures.rows("medqa_4options", a.seed)[0]["sent1"]
            res = venv.run(
                "data",
                [
                    "python",
                    "-m",
                    "data_prep.fixtures",
                    "--out",
                    p / "sources",
                    "--test-question",
                    question,
                    "--seed",
                    a.seed,
                ],
                extra_env={"PYTHONPATH": str(core.ROOT)},
            )
            if res.returncode:
                raise SystemExit("[data] fixture corpora failed")
            pipeline += ["--sources-dir", p / "sources", "--eval-dir", p / "eval"]
        online = {} if a.fixtures or a.hub_dir else venv.ONLINE
        res = venv.run(
            "data",
            ["python", "-m", "data_prep.pipeline", *pipeline],
            log=st.dir / "log.txt",
            extra_env={"PYTHONPATH": str(core.ROOT), **online},
        )
        if res.returncode:
            raise SystemExit(f"[data] the pipeline failed; see {st.dir / 'log.txt'}")
        stages.publish_all(st)
        reports = json.loads((st.dir / "work" / "report.json").read_text())
        st.m["tools"] = venv.tool_versions("data", ["datasets", "numpy"])
        st.m["metrics"] = {
            "steps": {k: {"in": v["in"], "out": v["out"], "dropped": v["dropped"]} for k, v in reports.items()},
            "sft_rows": reports["mix"]["out"],
            "blocks": reports["mix"]["blocks"],
        }
    m = st.m["metrics"]["steps"]
    print(table(["step", "in", "out", "dropped"], [[k, v["in"], v["out"], v["dropped"]] for k, v in m.items()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
