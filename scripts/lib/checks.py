"""Recipe validation shared by `make check-recipes` and every stage: the tools' own validators
(run in their stage envs) plus what they lack: unknown keys, values out of range (scripts/lib/values.py),
batch arithmetic, referenced files."""

import json
import subprocess
import tempfile
from pathlib import Path

from scripts import core
from scripts.core import AloeError

from . import hardware, render, values, venv, yamlfiles
from . import recipe as rc

TOOL_FOR = {
    "sft": ("sft", "validate_axolotl.py"),
    "merge": ("merge", "validate_mergekit.py"),
    "dpo": ("dpo", "validate_openrlhf.py"),
}


def _jobs(recipes, stages):
    jobs = {s: [] for s in stages}
    for i, r in enumerate(recipes):
        if "sft" in stages:
            base_cfg = r.files["recipe"].get("base_config")
            jobs["sft"].append(
                {
                    "id": i,
                    "config": render.render_sft(r),
                    "world_size": r.world("sft"),
                    "base_config": str(core.ROOT / base_cfg) if base_cfg else None,
                    "gpu": r.profile is None,
                }
            )
        if "merge" in stages:
            jobs["merge"].append({"id": i, "config": r.files["merge"]})
        if "dpo" in stages:
            for run in render.dpo_runs(r):
                if run["index"] == 0:  # the runs of a stage differ only in their paths
                    argv = render.render_dpo_argv(run, "runs/model", "runs/out")
                    jobs["dpo"].append({"id": f"{i}:{run['phase']}", "argv": argv})
    return jobs


def run_tools(recipes, stages):
    """Run each stage's validator once for all recipes, in parallel; returns {stage: {id: result}}."""
    with tempfile.TemporaryDirectory(prefix="check-recipes-") as tmp:
        return _run_tools(_jobs(recipes, stages), Path(tmp))


def _run_tools(jobs, tmp: Path):
    procs = {}
    for stage, js in jobs.items():
        if not js:
            continue
        env_name, script = TOOL_FOR[stage]
        f = tmp / f"{stage}.json"
        f.write_text(json.dumps(js))
        procs[stage] = subprocess.Popen(
            [str(venv.bin_dir(env_name) / "python"), str(venv.TOOLS / script), str(f)],
            env=venv.env_for(env_name),
            cwd=core.ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    out = {}
    for stage, p in procs.items():
        stdout, stderr = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"{TOOL_FOR[stage][1]} crashed (rc {p.returncode}):\n{stderr[-3000:]}")
        out[stage] = {str(k): v for k, v in json.loads(stdout.strip().splitlines()[-1]).items()}
    return out


def _tool_problems(r, stem, results):
    out = []
    for item in results.get("problems", []):
        msg = item["message"]
        if "known" in item:
            msg += yamlfiles.suggest(item.get("value", item["key"]), item["known"])
        out.append(r.problem(stem, item["key"], msg))
    return out


def validate(recipes, stages=("sft", "merge", "dpo")):
    """All problems of these recipes, and the batch table rows."""
    problems, rows = [], []
    for r in recipes:
        problems += rc.check_schema(r) + rc.check_remote_code(r) + hardware.check_hardware(r)
        problems += render.referenced_files(r) + values.check_ranges(r)
    try:
        results = run_tools(recipes, stages)
    except venv.MissingEnv as e:
        raise AloeError(str(e))
    for i, r in enumerate(recipes):
        if "sft" in stages:
            problems += _tool_problems(r, "sft", results["sft"][str(i)])
            b = hardware.sft_batch(r)
            problems += b.problems
            sft = r.files["sft"]
            rows.append(
                [
                    r.name,
                    "sft",
                    sft["base_model"],
                    b.world,
                    b.micro,
                    b.accum,
                    b.total,
                    sft.get("learning_rate"),
                    sft.get("max_steps") and f"{sft['max_steps']} steps" or sft.get("num_epochs"),
                ]
            )
        if "merge" in stages:
            problems += _tool_problems(r, "merge", results["merge"][str(i)])
            m = r.files["merge"]
            rows.append(
                [
                    r.name,
                    "merge",
                    f"{m.get('merge_method')}: sft + {m['models'][-1]['model']}",
                    r.world("merge"),
                    None,
                    None,
                    None,
                    None,
                    None,
                ]
            )
        if "dpo" in stages:
            b = hardware.dpo_batch(r)
            problems += b.problems
            for st in r.files["dpo"]["stages"]:
                problems += _tool_problems(r, "dpo", results["dpo"][f"{i}:{st['name']}"])
                args = {**r.files["dpo"]["args"], **(st.get("args") or {})}
                n = int(st.get("chunks", 1))
                data = st.get("dataset") + (f" ({st['config']})" if st.get("config") else "")
                rows.append(
                    [
                        r.name,
                        f"dpo {st['name']}",
                        data,
                        b.world,
                        b.micro,
                        b.accum,
                        b.total,
                        args.get("adam.lr"),
                        f"{args.get('train.max_epochs')} x {n} chunks" if n > 1 else args.get("train.max_epochs"),
                    ]
                )
    return problems, rows


HEADERS = ["recipe", "stage", "model / data", "world size", "micro batch", "grad accum", "total batch", "lr", "epochs"]
