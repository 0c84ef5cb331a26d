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
from scripts.core import AloeError
from scripts.lib import chain, cli, driver, hardware, placeholders, plan, render, stages
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
    st = mf.Build(tmp_path / "data", "data", {"sha256": "x"}, {}, env="base")
    with st:
        for rel in ("sft.jsonl", "dpo/chunk_0.jsonl", "dpo/chunk_1.jsonl", "dpo/redteam.jsonl", "eval/medqa.jsonl"):
            (st.partial / rel).parent.mkdir(parents=True, exist_ok=True)
            (st.partial / rel).write_text(rel)
        (st.partial / "work").mkdir()
        driver.publish_all(st)
    outs = mf.read(tmp_path / "data")["outputs"]
    assert sorted(outs) == ["dpo_chunk_0", "dpo_chunk_1", "dpo_redteam", "eval_medqa", "sft", "work"]
    assert (tmp_path / "data" / "dpo" / "chunk_1.jsonl").read_text() == "dpo/chunk_1.jsonl"
    assert outs["dpo_chunk_1"]["sha256"] == core.sha256_path(tmp_path / "data" / "dpo" / "chunk_1.jsonl")
    assert sorted(stages.matching(outs, "dpo_chunk_{i}")) == ["0", "1"]
    got = driver.inputs("eval", tmp_path, "data/..", "fixtures")  # {run}/data with run "data/.." = tmp_path/data
    assert list(got["fixtures"]) == ["medqa"]


def test_a_missing_required_output_fails_the_stage(tmp_path):
    st = mf.Build(tmp_path / "merge", "merge", {"sha256": "x"}, {}, env="base")
    with pytest.raises(AloeError, match="finished without its output 'model'"), st:
        driver.publish_all(st)
    assert mf.read(tmp_path / "merge" / ".partial")["status"] == "failed" and mf.read(tmp_path / "merge") is None
    st = mf.Build(tmp_path / "data", "data", {"sha256": "x"}, {}, env="base")
    with pytest.raises(AloeError, match="finished without any output 'dpo_chunk_{i}'"), st:
        for rel in ("sft.jsonl", "dpo/redteam.jsonl", "work/report.json"):
            (st.partial / rel).parent.mkdir(parents=True, exist_ok=True)
            (st.partial / rel).write_text("{}")
        driver.publish_all(st)  # no chunk file: a required templated output


def test_a_failed_rerun_leaves_the_finished_outputs_and_manifest_byte_identical(tmp_path):
    def build(content, fail=False):
        b = mf.Build(tmp_path / "merge", "merge", {"sha256": content}, {}, env="base")
        with b:
            (b.partial / "model").mkdir()
            (b.partial / "model" / "w.bin").write_text(content)
            if fail:
                raise AloeError("the tool died")
            driver.publish_all(b)

    build("first")
    before = {f: f.read_bytes() for f in (tmp_path / "merge").rglob("*") if f.is_file()}
    with pytest.raises(AloeError, match="the tool died"):
        build("second", fail=True)  # other inputs, a failed build
    after = {f: f.read_bytes() for f in (tmp_path / "merge").rglob("*") if f.is_file() and ".partial" not in f.parts}
    assert after == before and mf.read(tmp_path / "merge" / ".partial")["status"] == "failed"
    build("third")  # the next good build replaces them
    assert (tmp_path / "merge" / "model" / "w.bin").read_text() == "third"
    assert mf.read(tmp_path / "merge")["recipe"]["sha256"] == "third" and not (tmp_path / "merge" / ".partial").exists()


def test_placeholders_are_filled_one_way_and_a_missing_one_is_named():
    r = rc.load(R70)
    ph = placeholders.placeholders("merge", r, {"sft": {"path": "/real/sft"}})
    assert ph == {"@sft.model": "/real/sft"}
    cfg = placeholders.fill(r.files["merge"], ph, r.rel("merge"), required=ph)
    assert [m["model"] for m in cfg["models"]] == ["/real/sft", "meta-llama/Llama-3.1-70B-Instruct"]
    with pytest.raises(AloeError, match=r"recipes/aloe-beta-70b/merge.yaml: names no @sft.model"):
        placeholders.fill({"models": [{"model": "@sft.out"}]}, ph, r.rel("merge"), required=ph)


def test_check_recipes_names_a_wrong_placeholder(tmp_path):
    shutil.copytree(R70, tmp_path / "mine")
    merge = tmp_path / "mine" / "merge.yaml"
    merge.write_text(merge.read_text().replace('- model: "@sft.model"', '- model: "@sft.out"'))
    dpo = tmp_path / "mine" / "dpo.yaml"
    dpo.write_text(dpo.read_text().replace('"@data.dpo_redteam"', "runs/mine/data/dpo/redteam.jsonl"))
    problems = [str(p) for p in placeholders.placeholder_problems(rc.load(tmp_path / "mine"))]
    assert len(problems) == 3 and all("merge.yaml" in p for p in problems[:2]), problems
    assert "names no @sft.model" in problems[0] and "@sft.out is no output of a stage" in problems[1]
    assert "dpo.yaml" in problems[2] and "stage2: runs/mine/data/dpo/redteam.jsonl is no output" in problems[2]
    assert "@data.dpo_redteam" in problems[2]  # the tokens to name it by
    assert placeholders.placeholder_problems(rc.load(R70)) == []


def test_an_unknown_token_is_named_with_its_file_key_and_the_known_tokens(tmp_path):
    shutil.copytree(R70, tmp_path / "mine")
    sft = tmp_path / "mine" / "sft.yaml"
    sft.write_text(sft.read_text().replace('output_dir: "@sft.model"', 'output_dir: "@sft.modle"'))
    line = next(n for n, x in enumerate(sft.read_text().splitlines(), 1) if "@sft.modle" in x)
    problems = [str(p) for p in placeholders.placeholder_problems(rc.load(tmp_path / "mine"))]
    assert f"{sft}:{line}: output_dir: @sft.modle is no output of a stage; known: @sft.model, @sft.prepared" in problems
    assert any("names no @sft.model" in p for p in problems)  # and the token the stage fills is missing
    assert placeholders.placeholder_problems(rc.load(R70, profile="cpu-tiny-learn")) == []  # a profile's token
    assert all(map(placeholders.known, ["@data.dpo_chunk_{i}", "@data.dpo_chunk_3", "@data.dpo_redteam", "@sft.model"]))
    assert not any(map(placeholders.known, ["@sft.modle", "@sfft.model", "@dpo-run.modell", "@data.dpo", "@sft"]))


RECIPES = ["aloe-beta-8b", "aloe-beta-70b", "qwen2.5-aloe-beta-7b", "qwen2.5-aloe-beta-72b", "llama3-aloe-8b-alpha"]


@pytest.mark.parametrize("name", RECIPES)
def test_a_copied_recipe_folder_names_its_outputs_as_the_original(name, tmp_path):
    """`cp -r recipes/<name> <copy>`: no placeholder problem, and every stage fills the same paths under the runs
    root as for the original, but for the run's name (the tokens name stage outputs, not folders)."""
    from scripts import dpo

    copy = tmp_path / "recipes" / f"{name}-mine"
    shutil.copytree(ROOT / "recipes" / name, copy)
    runs = tmp_path / "runs"

    def filled(r):
        """{stage: {token: path under runs/, run name as <run>}} of sft, merge and each DPO run's data."""
        out = {}
        for stage in ("sft", "merge"):
            reads = {n: {"path": str(stages.folder(up, runs, r.name) / stages.SPECS[up].outputs[k])}
                     for n, (up, k) in stages.SPECS[stage].reads.items()}  # fmt: skip
            ph = placeholders.placeholders(stage, r, reads, stages.folder(stage, runs, r.name) / ".partial")
            out[stage] = {k: os.path.relpath(v, runs).replace(r.name, "<run>", 1) for k, v in ph.items()}
        data = stages.folder("data", runs, r.name)
        st = mf.Build(data, "data", {"sha256": r.name}, {}, env="base")
        with st:
            for i in range(5):
                (st.partial / f"chunk_{i}.jsonl").write_text("{}\n")
                st.publish(f"dpo_chunk_{i}", st.partial / f"chunk_{i}.jsonl", f"dpo/chunk_{i}.jsonl")
            (st.partial / "redteam.jsonl").write_text("{}\n")
            st.publish("dpo_redteam", st.partial / "redteam.jsonl", "dpo/redteam.jsonl")
        out["dpo"] = [os.path.relpath(x["data"]["path"], runs).replace(r.name, "<run>", 1)
                      for x in render.dpo_runs(r, dpo.data_files(r, runs))]  # fmt: skip
        return out

    mine = rc.load(copy)
    assert placeholders.placeholder_problems(mine) == []
    got = filled(mine)
    assert got == filled(rc.load(ROOT / "recipes" / name))
    assert got["sft"] == {
        "@data.sft": "<run>/data/sft.jsonl",
        "@sft.model": "<run>/sft/.partial/model",
        "@sft.prepared": "<run>/sft/.partial/prepared",
    }
    assert got["merge"] == {"@sft.model": "<run>/sft/model"}
    assert got["dpo"][0] == "<run>/data/dpo/chunk_0.jsonl" and got["dpo"][-1] == "<run>/data/dpo/redteam.jsonl"


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
    assert str(hardware.dpo_batch(plan.load(next(j for j in jobs if j.stage == "dpo").plan)[0])) == "1 x 5 x 20 = 100"


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
    with pytest.raises(AloeError, match=r"Llama-Guard-3-8B: profile cpu-tiny stands in .*kit/instruct, not built"):
        judged.stand_in(r, "meta-llama/Llama-Guard-3-8B")
    (tmp_path / "kit" / "instruct").mkdir(parents=True)
    assert judged.stand_in(r, "meta-llama/Llama-Guard-3-8B") == str(tmp_path / "kit" / "instruct")


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


def test_data_outputs_are_found_by_token_through_a_symlinked_runs_folder(tmp_path):
    (tmp_path / "scratch" / "r" / "data" / "dpo").mkdir(parents=True)
    (tmp_path / "runs").symlink_to(tmp_path / "scratch")
    chunk = tmp_path / "runs" / "r" / "data" / "dpo" / "chunk_0.jsonl"  # recorded through the link
    chunk.write_text("{}\n")
    outputs = {"dpo_chunk_0": {"path": str(chunk)}}
    found = placeholders.by_placeholder("data", outputs)
    assert found == {"@data.dpo_chunk_0": outputs["dpo_chunk_0"]}  # by key: where the file lies does not matter


SMOKE_JOBS = ["tiny-kit", "data", "sft", "merge", *(f"dpo-stage1-{i}" for i in range(1, 6)), "dpo-stage2-1",
              "medprompt-medqa_4options", "eval", "verify"]  # fmt: skip
REPRODUCE_8B_JOBS = ["data", "sft", "merge", *(f"dpo-stage1-{i}" for i in range(1, 6)), "dpo-stage2-1", "eval",
                     "verify"]  # fmt: skip


@pytest.mark.parametrize(
    "profile,fixtures,suite,expected",
    [("cpu-tiny", True, "mcqa", SMOKE_JOBS), (None, False, "mcqa", REPRODUCE_8B_JOBS),
     (None, False, "fields", REPRODUCE_8B_JOBS[:-2] + ["eval-mcqa", "eval", "verify"])],
)  # fmt: skip
def test_the_chain_is_derived_from_the_registry_in_its_published_order(tmp_path, profile, fixtures, suite, expected):
    r = rc.load(ROOT / "recipes" / "aloe-beta-8b", profile=profile, kit=tmp_path / "kit")
    jobs = chain.build(r, str(tmp_path), fixtures=fixtures, suite=suite, cuda=False)
    assert [j.name for j in jobs] == expected
    # every job waits only for jobs before it, the stages come in the registry's topological order, and each job
    # waits (directly or through others) for the stages whose outputs it reads
    seen, position = {}, [stages.ORDER.index(j.stage) for j in jobs]
    assert position == sorted(position)
    for j in jobs:
        assert all(a in seen for a in j.after), (j.name, j.after)
        upstream = set(j.after).union(*(seen[a] for a in j.after))
        for up, _ in stages.spec(j.stage).reads.values():
            producers = [x.name for x in jobs if x.stage == up]
            assert not producers or producers[-1] in upstream, (j.name, up)
        seen[j.name] = upstream
    assert "tiny-kit" not in seen["data"] and ("tiny-kit" in seen["sft"]) == fixtures  # the kit feeds models only


@pytest.mark.parametrize("force", [False, True])
def test_on_this_machine_the_dpo_runs_are_one_job_of_the_whole_stage(tmp_path, force):
    r = rc.load(ROOT / "recipes" / "aloe-beta-8b", profile="cpu-tiny", kit=tmp_path / "kit")
    jobs = chain.build(r, str(tmp_path), fixtures=True, force=force, cuda=False)
    here = {j.name: j for j in chain.one_dpo_job(jobs)}
    assert list(here) == ["tiny-kit", "data", "sft", "merge", "dpo", "medprompt-medqa_4options", "eval", "verify"]
    dpo = here["dpo"]  # the last run's plan without --upto: every run, and FORCE=1 reruns every run
    assert dpo.plan == jobs[9].plan and dpo.args == [] and dpo.after == ["merge"] and dpo.force == force
    assert here["eval"].after == ["dpo"] and here["medprompt-medqa_4options"].after == ["dpo"]
    assert [j.name for j in jobs][4:10] == [*(f"dpo-stage1-{i}" for i in range(1, 6)), "dpo-stage2-1"]  # untouched
    rest = chain.one_dpo_job(jobs[6:])  # a chain resumed at its third run: the other runs as one job, after the second
    assert rest[0].name == "dpo" and rest[0].after == ["dpo-stage1-2"] and len(rest) == 4


def test_the_chain_names_no_stage_and_tests_no_argument():
    """chain.build and its expansion read stage names and job kinds from the registry only."""
    import ast

    tree = ast.parse((ROOT / "scripts" / "lib" / "chain.py").read_text())
    funcs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name in ("build", "expand", "done")]
    names = {c.value for f in funcs for c in ast.walk(f) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    assert not names & set(stages.SPECS), names & set(stages.SPECS)
    compares = [c for f in funcs for c in ast.walk(f) if isinstance(c, ast.Compare)]
    assert not [ast.unparse(c) for c in compares if "args" in ast.unparse(c)]
