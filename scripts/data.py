"""Stage data: the training-ready files of a recipe, by the data_prep pipeline (in .venv/data).

  python -m scripts.data --recipe recipes/aloe-beta-8b            # the published sources, from the hub
  python -m scripts.data --sources upstream                        # the original releases instead of the copies
  python -m scripts.data --profile cpu-tiny --fixtures            # offline: data_prep/fixtures.py corpora
With --fixtures it also writes the local evaluation fixtures (each benchmark's schema) and a small
Medprompt CoT database. Outputs: the data stage's (scripts/lib/stages.py), recorded in the manifest.
"""

import json
import sys
from functools import partial
from pathlib import Path

from data_prep import eval_fixtures, normalize
from scripts import core
from scripts.core import AloeError, sha256_json, table
from scripts.lib import driver, stages, venv


class Data(driver.Stage):
    name = "data"

    def options(self, ap):
        ap.add_argument("--fixtures", action="store_true", help="offline fixture corpora instead of the hub")
        ap.add_argument(
            "--sources",
            default="authors",
            choices=("authors", "upstream"),
            help="source set of data_prep/sources.yaml (default: the authors' processed copies)",
        )
        ap.add_argument("--hub-dir", help="a folder laid out like the hub, <owner>/<repo> (default: the hub)")
        ap.add_argument("--seed", type=int, default=0)

    def prepare(self, ctx):
        r, o = ctx.recipe, ctx.opts
        dpo = {s["name"]: s for s in r.files["dpo"]["stages"]}
        chunks, redteam = dpo["stage1"]["chunks"], dpo["stage2"].get("config")
        spec = {"fixtures": o["fixtures"], "sources": o["sources"], "seed": o["seed"], "chunks": chunks,
                "redteam": redteam,
                "max_reject_rate": r.files["recipe"].get("max_reject_rate", normalize.MAX_REJECT_RATE)}  # fmt: skip
        if o["hub_dir"]:  # a hub mirror is what the data is read from: part of the identity, and it must exist
            if not Path(o["hub_dir"]).is_dir():
                raise AloeError(f"--hub-dir {o['hub_dir']}: no such folder (a hub-layout mirror, <owner>/<repo>)")
            spec["hub_dir"] = str(Path(o["hub_dir"]).resolve())
        recipe = {"path": "data_prep/sources.yaml", "sha256": sha256_json(spec), "rendered": spec}
        return driver.Prepared(
            stages.folder("data", ctx.runs, r.name), recipe, {}, "data", code=(core.ROOT / "data_prep",),
            numbers={"seed": o["seed"]}, tools=("datasets", "numpy"),
        )  # fmt: skip

    def run(self, ctx, p, b):
        o, spec, part = ctx.opts, p.recipe["rendered"], b.partial
        pipeline = [
            "--work", part / "work", "--out-dir", part, "--seed", o["seed"], "--chunks", spec["chunks"],
            "--sources", o["sources"],
            *(["--hub-dir", Path(o["hub_dir"]).resolve()] if o["hub_dir"] else []),
            *(["--redteam", spec["redteam"]] if spec["redteam"] else []),
            "--max-reject-rate", spec["max_reject_rate"],
        ]  # fmt: skip
        if o["fixtures"]:
            for task in eval_fixtures.FIXTURES:
                core.write_jsonl(part / "eval" / f"{task}.jsonl", eval_fixtures.rows(task, o["seed"]))
            core.write_jsonl(part / "medprompt" / "database.jsonl", eval_fixtures.cot_database(seed=o["seed"]))
            question = eval_fixtures.rows("medqa_4options", o["seed"])[0]["sent1"]
            cmd = ["python", "-m", "data_prep.fixtures", "--out", part / "sources", "--test-question", question,
                   "--seed", o["seed"]]  # fmt: skip
            if venv.run("data", cmd, extra_env={"PYTHONPATH": str(core.ROOT)}).returncode:
                raise AloeError("[data] fixture corpora failed")
            pipeline += ["--sources-dir", part / "sources", "--eval-dir", part / "eval"]
        online = {} if o["fixtures"] or o["hub_dir"] else venv.ONLINE
        res = venv.run(
            "data",
            ["python", "-m", "data_prep.pipeline", *pipeline],
            log=b.dir / "log.txt",
            extra_env={"PYTHONPATH": str(core.ROOT), **online},
        )
        if res.returncode:
            tail = "\n".join((b.dir / "log.txt").read_text(errors="replace").splitlines()[-20:])
            raise AloeError(f"the pipeline failed; the end of {b.dir / 'log.txt'}:\n{tail}")
        reports = json.loads((part / "work" / "report.json").read_text())
        return {
            "steps": {k: {"in": v["in"], "out": v["out"], "dropped": v["dropped"]} for k, v in reports.items()},
            "sft_rows": reports["mix"]["out"],
            "blocks": reports["mix"]["blocks"],
            "layouts": reports["normalize"]["layouts"],  # of the sources whose layout is unverified
            "role_sets": reports["normalize"]["role_sets"],
            "read_from": reports["normalize"]["read_from"],  # each source's file, or hub revision and files
            "contamination": reports["decontaminate"]["contamination"],
        }

    def summary(self, ctx, p, m):
        x = m["metrics"]
        rows = [[k, v["in"], v["out"], v["dropped"]] for k, v in x["steps"].items()]
        layouts = [[src, normalize.layout_note(lay)] for src, lay in x["layouts"].items()]
        return "\n".join(
            [f"{p.folder}", table(["step", "in", "out", "dropped"], rows), table(["source", "layout"], layouts)]
        )

    def figure(self, m):
        x = m["metrics"]
        dropped = sum(v["dropped"] for v in x.get("steps", {}).values())
        return f"data_prep on fixture corpora: {x.get('sft_rows')} rows kept, {dropped} dropped with a reason"


STAGE = Data()

main = partial(driver.main, STAGE)  # the command line: the one stage driver


if __name__ == "__main__":
    sys.exit(main())
