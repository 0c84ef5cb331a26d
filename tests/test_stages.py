"""The stage registry and the rendered plan (scripts/lib/stages.py, scripts/lib/plan.py): folders and output keys in
one place, placeholders filled one way, a layout that reaches every stage, an edited recipe refused."""

import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, run_py

from scripts import core
from scripts import eval as ev
from scripts.lib import chain, cli, placeholders, plan, stages
from scripts.lib import manifest as mf
from scripts.lib import recipe as rc

pytestmark = pytest.mark.unit

R70 = ROOT / "recipes" / "aloe-beta-70b"
# our code (data_prep/ is the data stage's tool: it writes its own out-dir layout, which the registry declares)
CODE = [p for d in ("scripts", "medprompt", "evals") for p in (ROOT / d).rglob("*.py")]
# stage folders as path joins or names, and the output keys one stage reads of another
WRITTEN = [
    r'(?<!VENVS )/ "(data|sft|merge|dpo|tiny-kit)"',
    r'"(eval|medprompt)-(\{|")',
    r"(eval|medprompt)-\{",
    r'"fields-labels"',
    r'\["outputs"\]\["',  # an output read by its key
    r'"(dpo_chunk_|dpo_redteam|medprompt_database|eval_\{)',
]


@pytest.mark.parametrize("written", WRITTEN)
def test_folders_and_output_keys_are_written_only_in_the_registry(written):
    found = [str(p.relative_to(ROOT)) for p in CODE if re.search(written, p.read_text())]
    assert set(found) <= {"scripts/lib/stages.py"}, f"{written} written in {found}"


def test_no_stage_script_imports_another():
    entry = "|".join(s.module.split(".")[1] for s in stages.SPECS.values())
    pattern = re.compile(
        rf"^\s*(from scripts import ({entry})\b|from scripts\.({entry}) import|import scripts\.({entry})\b)", re.M
    )
    bad = [f"{p.relative_to(ROOT)}: {m.group(0).strip()}" for p in CODE for m in pattern.finditer(p.read_text())]
    assert bad == []


def test_templated_outputs_are_published_and_read_back_by_their_value(tmp_path):
    st = mf.Stage(tmp_path / "data", "data", {"sha256": "x"}, {}, env="base")
    with st:
        for rel in ("sft.jsonl", "dpo/chunk_0.jsonl", "dpo/chunk_1.jsonl", "dpo/redteam.jsonl", "eval/medqa.jsonl"):
            (st.partial / rel).parent.mkdir(parents=True, exist_ok=True)
            (st.partial / rel).write_text(rel)
        (st.partial / "work").mkdir()
        stages.publish_all(st)
    outs = mf.read(tmp_path / "data")["outputs"]
    assert sorted(outs) == ["dpo_chunk_0", "dpo_chunk_1", "dpo_redteam", "eval_medqa", "sft", "work"]
    assert (tmp_path / "data" / "dpo" / "chunk_1.jsonl").read_text() == "dpo/chunk_1.jsonl"
    assert outs["dpo_chunk_1"]["sha256"] == core.sha256_path(tmp_path / "data" / "dpo" / "chunk_1.jsonl")
    assert sorted(stages.matching(outs, "dpo_chunk_{i}")) == ["0", "1"]
    got = stages.inputs("eval", tmp_path, "data/..", "fixtures")  # {run}/data with run "data/.." = tmp_path/data
    assert list(got["fixtures"]) == ["medqa"]


def test_a_missing_required_output_fails_the_stage(tmp_path):
    st = mf.Stage(tmp_path / "merge", "merge", {"sha256": "x"}, {}, env="base")
    with pytest.raises(SystemExit, match="finished without its output 'model'"), st:
        stages.publish_all(st)
    assert mf.read(tmp_path / "merge")["status"] == "failed"
    st = mf.Stage(tmp_path / "data", "data", {"sha256": "x"}, {}, env="base")
    with pytest.raises(SystemExit, match="finished without any output 'dpo_chunk_{i}'"), st:
        for rel in ("sft.jsonl", "dpo/redteam.jsonl", "work/report.json"):
            (st.partial / rel).parent.mkdir(parents=True, exist_ok=True)
            (st.partial / rel).write_text("{}")
        stages.publish_all(st)  # no chunk file: a required templated output


def test_placeholders_are_filled_one_way_and_a_missing_one_is_named():
    r = rc.load(R70)
    ph = placeholders.placeholders("merge", r, {"sft": {"path": "/real/sft"}})
    assert ph == {"runs/aloe-beta-70b/sft/model": "/real/sft"}
    cfg = placeholders.fill(r.files["merge"], ph, r.rel("merge"), required=ph)
    assert [m["model"] for m in cfg["models"]] == ["/real/sft", "meta-llama/Llama-3.1-70B-Instruct"]
    with pytest.raises(SystemExit, match=r"recipes/aloe-beta-70b/merge.yaml: names no runs/aloe-beta-70b/sft/model"):
        placeholders.fill({"models": [{"model": "runs/other/sft/model"}]}, ph, r.rel("merge"), required=ph)


def test_check_recipes_names_a_wrong_placeholder(tmp_path):
    shutil.copytree(R70, tmp_path / "aloe-beta-70b")
    merge = tmp_path / "aloe-beta-70b" / "merge.yaml"
    merge.write_text(merge.read_text().replace("runs/aloe-beta-70b/sft/model", "runs/aloe-beta-70b/sft/out"))
    dpo = tmp_path / "aloe-beta-70b" / "dpo.yaml"
    dpo.write_text(dpo.read_text().replace("data/dpo/redteam.jsonl", "data/dpo/red.jsonl"))
    problems = [str(p) for p in placeholders.placeholder_problems(rc.load(tmp_path / "aloe-beta-70b"))]
    assert len(problems) == 2 and "merge.yaml" in problems[0] and "names no runs/aloe-beta-70b/sft/model" in problems[0]
    assert "dpo.yaml" in problems[1] and "stage2: runs/aloe-beta-70b/data/dpo/red.jsonl is no output" in problems[1]
    assert placeholders.placeholder_problems(rc.load(R70)) == []


def test_a_layout_reaches_every_stage_through_its_plan(tmp_path):
    layout = chain.parse_layout("data=1x0,sft=16x4,merge=1x2,dpo=5x4,medprompt=1x2,eval=1x2")
    jobs = chain.write_plans(chain.build(rc.load(R70), str(tmp_path), database="db.jsonl", layout=layout))
    seen = set()
    for job in jobs:
        r, p = plan.load(job.plan)
        entry = stages.spec(job.stage).hardware
        if entry in layout:
            nodes, gpus = layout[entry]
            assert (job.nodes, job.gpus) == (nodes, gpus) and r.world(entry) == max(gpus, 1), job.name
            assert p["hardware"][entry]["gpus"] == gpus and p["job"]["name"] == job.name
            seen.add(entry)
    assert seen == set(layout)
    r, _ = plan.load(next(j for j in jobs if j.name == "eval").plan)
    assert ev.model_args(r, "m", "vllm").endswith(",tensor_parallel_size=2")
    assert next(j for j in jobs if j.name == "eval").parallel == "tensor parallel 2"
    assert rc.dpo_batch(plan.load(next(j for j in jobs if j.stage == "dpo").plan)[0])[:4] == (20, 1, 5, 100)


def test_the_dry_run_shows_the_layout_in_the_eval_job(tmp_path):
    out = run_py(
        "scripts.drivers.reproduce", "--recipe", R70, "--dry-run", "--layout", "eval=1x2", "--runs", tmp_path
    ).stdout
    row = next(line for line in out.splitlines() if line.startswith("eval "))
    assert "1 x 2" in row and "tensor parallel 2" in row
    plans = tmp_path / "aloe-beta-70b" / "plan"  # a dry run's plans are its own: a queued chain keeps reading its
    assert (plans / "dry-run" / "eval.json").exists() and not list(plans.glob("*.json"))
    assert "#SBATCH --gres=gpu:2" in out.split("eval.sbatch")[1].split("###")[0]


def test_a_recipe_edited_after_planning_is_refused_naming_what_changed(tmp_path):
    shutil.copytree(R70, tmp_path / "recipe")
    jobs = chain.write_plans(chain.build(rc.load(tmp_path / "recipe"), str(tmp_path / "runs")))
    sft = next(j for j in jobs if j.name == "sft")
    assert plan.load(sft.plan)[0].files["sft"]["learning_rate"] == 2e-5
    f = tmp_path / "recipe" / "sft.yaml"
    f.write_text(f.read_text().replace("learning_rate: 2.0e-5", "learning_rate: 3.0e-5"))
    p = run_py("scripts.sft", "--plan", sft.plan, check=False)
    assert p.returncode and "changed since this job was planned" in p.stderr, p.stderr
    assert re.search(r"sft\.yaml learning_rate: 2e-05 -> 3e-05", p.stderr), p.stderr
    assert "upstream manifest" not in p.stderr  # refused before it looked for anything else
    f.write_text(f.read_text().replace("learning_rate: 3.0e-5", "learning_rate: 2.0e-5  # a comment now"))
    assert plan.load(sft.plan)[0].files["sft"]["learning_rate"] == 2e-5  # only a comment changed: runs the plan
    r = plan.load(sft.plan)[0]  # a file the plan only names (its DeepSpeed config): any change refuses
    assert plan.what_changed(r, ["recipes/deepspeed/zero3_bf16.json"])[1] and not plan.what_changed(r, [])[1]


def test_a_plan_of_another_schema_is_refused(tmp_path):
    jobs = chain.write_plans(chain.build(rc.load(R70), str(tmp_path)))
    text = jobs[0].plan.read_text().replace(plan.SCHEMA, "aloe-repro/plan@0")
    jobs[0].plan.write_text(text)
    with pytest.raises(plan.PlanError, match=r"data.json: plan schema 'aloe-repro/plan@0'"):
        plan.load(jobs[0].plan)


@pytest.mark.parametrize(
    "layout,why", [("sft=0x4", "cannot be spread evenly over 0 nodes"), ("eval=2x4", "one node only")]
)
def test_a_layout_that_cannot_run_is_refused_before_anything_is_planned(layout, why):
    with pytest.raises(chain.LayoutError, match=why):
        chain.build(rc.load(R70), "/nowhere", layout=chain.parse_layout(layout))


def test_a_login_node_answers_as_the_gpu_node_and_stand_ins_come_from_the_plan_and_must_be_built(monkeypatch, tmp_path):
    from scripts.lib import judged, venv

    monkeypatch.setenv(venv.CUDA, "1")
    assert venv.vllm_env() == "infer-gpu"
    monkeypatch.setenv(venv.CUDA, "0")
    assert venv.vllm_env() == "infer-vllm"
    r = rc.load(ROOT / "recipes" / "aloe-beta-8b", profile="cpu-tiny", kit=tmp_path / "kit")
    planned = type("Args", (), {"profile": None})()  # a job run on its plan gets no --profile
    with pytest.raises(SystemExit, match=r"Llama-Guard-3-8B: profile cpu-tiny stands in .*kit/instruct, not built"):
        judged.stand_in(planned, r, "meta-llama/Llama-Guard-3-8B")
    (tmp_path / "kit" / "instruct").mkdir(parents=True)
    assert judged.stand_in(planned, r, "meta-llama/Llama-Guard-3-8B") == str(tmp_path / "kit" / "instruct")


def test_a_job_runs_on_cuda_or_not_as_planned_and_a_cuda_plan_is_refused_without_a_gpu(tmp_path, monkeypatch):
    from scripts.lib import venv

    jobs = {j.name: j for j in chain.write_plans(chain.build(rc.load(R70), str(tmp_path), cuda=True))}
    assert [n for n, j in jobs.items() if not j.cuda] == ["data", "merge", "verify"]  # the jobs without GPUs
    assert plan.load(jobs["eval"].plan)[1]["job"]["cuda"] is True
    monkeypatch.delenv(venv.CUDA, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi: this machine has no GPU
    p = subprocess.run([sys.executable, "-m", "scripts.eval", "--plan", jobs["eval"].plan],
                       cwd=ROOT, text=True, capture_output=True, timeout=300)  # fmt: skip
    assert p.returncode and "eval.json: planned for a CUDA node (vLLM from .venv/infer-gpu)" in p.stderr, p.stderr
    monkeypatch.setenv(venv.CUDA, "1")  # planned on a GPU login node for a CPU-only cluster: no job on CUDA
    assert not any(j.cuda for j in chain.build(rc.load(R70), str(tmp_path), plans="plan/cpu-nodes", cuda=False))
    monkeypatch.delenv(venv.CUDA)
    cpu = chain.build(rc.load(R70), str(tmp_path), plans="plan/cpu")  # planned here: no CUDA
    monkeypatch.setenv(venv.CUDA, "1")  # a machine with a GPU runs a CPU plan as planned
    cli.pin_cuda(cpu[0].plan, cpu[0].rendered["job"]["cuda"])
    assert venv.vllm_env() == "infer-vllm"


def test_vllm_jobs_are_not_submitted_to_gpu_nodes_before_their_environment_exists(tmp_path):
    venvs = tmp_path / "venvs"  # every environment but infer-gpu: links to this checkout's
    venvs.mkdir()
    for env in (ROOT / ".venv").iterdir():
        if env.name != "infer-gpu":
            (venvs / env.name).symlink_to(env)
    p = subprocess.run(
        [sys.executable, "-m", "scripts.drivers.reproduce", "--recipe", R70, "--runs", tmp_path / "runs",
         "--cluster", ROOT / "recipes" / "clusters" / "example.yaml"],
        cwd=ROOT, text=True, capture_output=True, timeout=300, env={**os.environ, "ALOE_VENVS": str(venvs)},
    )  # fmt: skip
    assert p.returncode and "eval run vLLM on CUDA: build its environment first" in p.stderr, p.stderr
    assert "nothing was run or submitted" in p.stderr and not (tmp_path / "runs" / "aloe-beta-70b" / "slurm").exists()


def test_data_outputs_are_found_by_placeholder_through_a_symlinked_runs_folder(tmp_path):
    (tmp_path / "scratch" / "r" / "data" / "dpo").mkdir(parents=True)
    (tmp_path / "runs").symlink_to(tmp_path / "scratch")
    chunk = tmp_path / "runs" / "r" / "data" / "dpo" / "chunk_0.jsonl"  # recorded through the link
    chunk.write_text("{}\n")
    found = placeholders.by_placeholder("x", "data", tmp_path / "scratch" / "r" / "data", {"c": {"path": str(chunk)}})
    assert list(found) == ["runs/x/data/dpo/chunk_0.jsonl"]
