"""Hostile or mistyped input (issue 23): a make variable is never run as code, and reaches its script as one
literal argument."""

import json
import subprocess

import pytest
from conftest import ROOT, run_py

from scripts.core import AloeError
from scripts.lib import driver, stages, venv
from scripts.lib import manifest as mf

pytestmark = pytest.mark.unit


def make(*args, cwd=ROOT):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("value", ["x; touch {f} #", "$(shell touch {f})", "`touch {f}`", "$$(touch {f})"])
def test_a_make_variable_is_never_run_and_arrives_as_one_literal_argument(tmp_path, value):
    planted = tmp_path / "planted"
    value = value.format(f=planted)
    shown = make("-n", "verify", f"MODEL={value}")  # make -n evaluates no value either
    assert shown.returncode == 0 and not planted.exists(), shown.stdout + shown.stderr
    p = make("verify", "PY=printf '[%s]\\n'", f"MODEL={value}", "SUITE=fields")  # PY: print the argv it would get
    assert not planted.exists(), p.stdout + p.stderr
    assert f"[--model]\n[{value}]\n[--suite]\n[fields]" in p.stdout, p.stdout + p.stderr  # as typed, to the letter


def finished(folder, stage, files: dict):
    """A finished build of `stage` in `folder` whose outputs are `files` ({path in .partial: text})."""
    b = mf.Build(folder, stage, {"sha256": stage}, {}, env="base")
    with b:
        for rel, text in files.items():
            (b.partial / rel).parent.mkdir(parents=True, exist_ok=True)
            (b.partial / rel).write_text(text)
        driver.publish_all(b)
    return b.m


def test_a_tampered_model_is_refused_by_the_next_stage(tmp_path):
    finished(stages.folder("sft", tmp_path, "r"), "sft", {"model/w.bin": "weights", "prepared/x": "rows"})
    assert driver.inputs("merge", tmp_path, "r")["sft"]["path"].endswith("sft/model")
    (tmp_path / "r" / "sft" / "model" / "w.bin").write_text("weights, edited")
    with pytest.raises(AloeError, match=r"sft/manifest.json: .*sft/model changed since its stage recorded it"):
        driver.inputs("merge", tmp_path, "r")


def test_verify_refuses_results_that_differ_from_their_manifest(tmp_path):
    results = {"results": {"medqa_4options": {"acc,none": 0.25, "acc_stderr,none": 0.01}}}
    folder = stages.folder("eval", tmp_path, "aloe-beta-8b", suite="mcqa")
    finished(folder, "eval", {"lm_eval/m/results_2026.json": json.dumps(results)})
    assert mf.results(folder, "verify").name == "lm_eval"
    f = folder / "lm_eval" / "m" / "results_2026.json"
    f.write_text(json.dumps({"results": {"medqa_4options": {"acc,none": 0.99, "acc_stderr,none": 0.01}}}))
    p = run_py("scripts.verify", "--runs", tmp_path, "--suite", "mcqa", check=False)
    assert p.returncode == 1 and "changed since its stage recorded it" in p.stderr and "eval-mcqa" in p.stderr
    assert "0.99" not in p.stdout and "within tolerance" not in p.stdout  # nothing was scored from it


@pytest.mark.parametrize(
    "module, args, says",
    [
        ("scripts.medprompt", ["--dataset", "medqa_4options/../../../victim", "--local"], "invalid choice"),
        ("scripts.eval", ["--profile", "../../../elsewhere/evil"], "no such profile"),
        ("scripts.eval", ["--limit", "0"], "'0': expected a whole number above 0"),
        ("scripts.eval", ["--limit", "-1"], "'-1': expected a whole number above 0"),
        ("scripts.eval", ["--model", "/nonexistent"], "neither a local model folder nor a hub id"),
        ("scripts.eval", ["--model", "{kit},trust_remote_code=True"], "has no ',' or '='"),
        ("scripts.eval", ["--model", "../../x"], "neither a local model folder nor a hub id"),
        ("scripts.drivers.reproduce", ["--dry-run", "--suite", "unknown"], "invalid choice: 'unknown'"),
        ("scripts.data", ["--hub-dir", "/nonexistent"], "--hub-dir /nonexistent: no such folder"),
        ("scripts.sft", ["--world-size", "-4"], "'-4': expected a whole number above 0"),
    ],
)
def test_a_bad_name_is_refused_before_anything_is_made(tmp_path, module, args, says):
    runs, victim = tmp_path / "deep" / "er" / "runs", tmp_path / "victim"
    victim.mkdir()
    (victim / "out").write_text("keep me")
    args = [a.replace("{kit}", str(ROOT / "recipes")) for a in args]
    p = run_py(module, "--runs", runs, *args, check=False)
    assert p.returncode in (1, 2) and says in p.stderr, p.stderr[-2000:]
    assert not runs.exists() and (victim / "out").read_text() == "keep me"


def test_a_model_name_never_makes_a_folder_outside_the_runs_root(tmp_path):
    for model in ("..", "../..", "/", "a/../../b"):
        assert stages.model_eval_dir(tmp_path, model, "mcqa").resolve().is_relative_to(tmp_path.resolve())
    with pytest.raises(AloeError, match="dataset '../x': expected a name"):
        stages.folder("medprompt", tmp_path, "r", dataset="../x")


def test_names_are_confined_but_a_folder_the_user_linked_into_runs_is_theirs(tmp_path):
    runs, scratch = tmp_path / "runs", tmp_path / "scratch"
    (scratch / "tiny-kit").mkdir(parents=True)
    runs.mkdir()
    (runs / "tiny-kit").symlink_to(scratch / "tiny-kit")
    assert stages.inside(runs, runs / "tiny-kit") == runs / "tiny-kit"
    with pytest.raises(AloeError, match="outside the runs root"):
        stages.inside(runs, runs / "tiny-kit" / ".." / ".." / "scratch")


@pytest.mark.parametrize("n", ["0", "-4", "four"])
def test_check_recipes_refuses_a_world_size_that_is_no_count_of_gpus(n):
    p = run_py("scripts.drivers.check_recipes", "--world-size", n, check=False)
    assert p.returncode == 2 and f"'{n}': expected a whole number above 0" in p.stderr


def test_slurm_settings_are_typed_split_with_shell_rules_and_one_token_each(tmp_path, monkeypatch):
    from scripts.lib import slurm

    example = ROOT / "recipes" / "clusters" / "example.yaml"
    monkeypatch.setenv("ALOE_SLURM_SBATCH", "--exclusive --mem=0")
    assert slurm.load_settings(example)["sbatch"] == ["--exclusive", "--mem=0"]  # not one character per option
    monkeypatch.setenv("ALOE_SLURM_GPUS_PER_NODE", "four")
    with pytest.raises(AloeError, match="example.yaml: gpus_per_node: 'four': expected int"):
        slurm.load_settings(example)
    monkeypatch.delenv("ALOE_SLURM_GPUS_PER_NODE")
    monkeypatch.setenv("ALOE_SLURM_PARTITION", "gpu\n#SBATCH --time=99-00")
    with pytest.raises(AloeError, match="partition: .*expected one sbatch token"):
        slurm.load_settings(example)


def test_a_dpo_phase_name_with_a_newline_is_refused_when_planning(tmp_path):
    import shutil

    from scripts.lib import chain
    from scripts.lib import recipe as rc

    copy = tmp_path / "recipe"
    shutil.copytree(ROOT / "recipes" / "aloe-beta-8b", copy)
    dpo = copy / "dpo.yaml"
    dpo.write_text(dpo.read_text().replace("name: stage2", 'name: "stage2\\n#SBATCH --time=99-00"', 1))
    with pytest.raises(AloeError, match=r"job 'dpo-stage2\\n#SBATCH --time=99-00-1': expected a name"):
        chain.build(rc.load(copy), str(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()


def test_a_server_url_with_credentials_is_refused_and_never_echoed():
    p = run_py("scripts.safety", "--judge-url", "http://user:s3cret@judge.example:8000/v1", check=False)
    assert p.returncode == 2 and "ALOE_API_KEY" in p.stderr and "s3cret" not in p.stderr + p.stdout


def test_the_api_key_comes_from_the_environment_and_is_not_recorded(chat_server, monkeypatch):
    from medprompt.generate import OpenAIGenerator, Request

    url, seen, _ = chat_server
    monkeypatch.setenv("ALOE_API_KEY", "s3cret")
    gen = OpenAIGenerator("m", url, http_retries=0)
    assert gen._one(Request([{"role": "user", "content": "hi"}], 0, 4, 0.0)).text == "no"
    assert seen[-1]["auth"] == "Bearer s3cret" and "s3cret" not in json.dumps(gen.info)


def test_the_hub_token_is_not_forwarded_to_another_host():
    import threading
    import urllib.request
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from scripts.drivers.new_recipe import SameHostAuth

    auth = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            auth[self.path] = self.headers.get("Authorization")
            if self.path == "/start":  # a redirect to another host name (the same server, as localhost)
                self.send_response(302)
                self.send_header("Location", f"http://localhost:{self.server.server_port}/cdn")
                self.end_headers()
                return
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{srv.server_port}/start", headers={"Authorization": "Bearer t"})
        urllib.request.build_opener(SameHostAuth).open(req, timeout=10).read()
    finally:
        srv.shutdown()
    assert auth == {"/start": "Bearer t", "/cdn": None}


def test_planning_refuses_an_empty_database_and_verify_a_baseline_never_evaluated(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    runs = tmp_path / "runs"
    p = run_py("scripts.drivers.reproduce", "--runs", runs, "--dry-run", "--database", empty, check=False)
    assert p.returncode == 1 and "the database is empty" in p.stderr and not runs.exists()
    results = {"results": {"medqa_4options": {"acc,none": 0.25, "acc_stderr,none": 0.01}}}
    finished(
        stages.folder("eval", runs, "aloe-beta-8b", suite="mcqa"),
        "eval",
        {"lm_eval/results_1.json": json.dumps(results)},
    )
    p = run_py("scripts.verify", "--runs", runs, "--baseline", "meta-llama/Llama-3.1-8B-Instruct", check=False)
    assert p.returncode == 1 and "no results of meta-llama/Llama-3.1-8B-Instruct" in p.stderr, p.stderr
    assert "gain" not in p.stdout  # the model's own results were not used as its baseline


def test_make_variables_reach_the_tools_only_under_their_own_prefix(monkeypatch):
    """WORLD_SIZE, MODEL, CONFIG ... mean something to torch, axolotl and friends: a make variable (given or
    defaulted) is never put into the tools' environment under its own name."""
    for name in ("WORLD_SIZE", "MODEL", "SUITE", "CONFIG", "NAME"):
        monkeypatch.delenv(name, raising=False)
    p = make("-s", "verify", "PY=printenv #", "MODEL=m", "WORLD_SIZE=3")  # '#': the arguments become a comment
    names = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
    assert names["ALOE_MAKE_MODEL"] == "m" and names["ALOE_MAKE_WORLD_SIZE"] == "3", p.stdout[-2000:]
    assert not {"WORLD_SIZE", "MODEL", "SUITE", "CONFIG", "NAME"} & set(names), p.stdout[-2000:]


def test_a_truncated_manifest_is_named_not_a_traceback(tmp_path):
    finished(stages.folder("data", tmp_path, "r"), "data", {"sft.jsonl": "{}\n", "dpo/redteam.jsonl": "{}\n",
                                                           "dpo/chunk_0.jsonl": "{}\n", "work/report.json": "{}"})  # fmt: skip
    m = tmp_path / "r" / "data" / "manifest.json"
    m.write_text(m.read_text()[:200])  # what a full disk or a hand edit leaves
    with pytest.raises(AloeError, match=rf"{m}: not readable JSON"):
        driver.inputs("sft", tmp_path, "r")


def test_a_model_with_its_own_code_goes_to_openrlhf_only_when_the_recipe_allows_it(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"auto_map": {"AutoModelForCausalLM": "modeling_x.X"}}))
    with pytest.raises(AloeError, match="config.json: OpenRLHF would run this model's own code"):
        mf.refuse_remote_code(str(model), [], "OpenRLHF")
    mf.refuse_remote_code(str(model), [str(model)], "OpenRLHF")  # named in recipe.yaml trust_remote_code
    (model / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    mf.refuse_remote_code(str(model), [], "OpenRLHF")  # no custom code: nothing to allow


def test_medprompt_on_a_hub_benchmark_has_what_it_reads_it_with():
    """make medprompt BACKEND=hf on a hub dataset reads it with datasets (data_prep.benchmarks.load) in .venv/infer."""
    from scripts.lib import venv

    p = venv.run("infer", ["python", "-c", "import datasets, data_prep.benchmarks"], capture=True,
                 extra_env={"PYTHONPATH": str(ROOT)})  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]


def test_a_cut_safetensors_file_is_named_before_any_tool_loads_it(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    whole = len(header).to_bytes(8, "little") + header + bytes(16)
    (model / "model.safetensors").write_bytes(whole)
    assert mf.model_input(str(model))["sha256"]
    (model / "model.safetensors").write_bytes(whole[:-5])  # a copy cut short
    p = run_py("scripts.eval", "--runs", tmp_path / "runs", "--model", model, check=False)
    assert p.returncode == 1 and f"{model}/model.safetensors: a cut or damaged safetensors file" in p.stderr
    assert not (tmp_path / "runs").exists()


def test_check_recipes_names_remote_code_that_the_recipe_does_not_allow(tmp_path):
    import shutil

    from scripts.lib import recipe as rc

    copy = tmp_path / "recipe"
    shutil.copytree(ROOT / "recipes" / "aloe-beta-8b", copy)
    assert rc.check_remote_code(rc.load(copy)) == []
    sft = copy / "sft.yaml"
    sft.write_text(sft.read_text() + "trust_remote_code: true\n")
    (problem,) = rc.check_remote_code(rc.load(copy))
    assert (
        "sft.yaml" in str(problem) and "trust_remote_code" in str(problem) and "name it in recipe.yaml" in str(problem)
    )
    (copy / "recipe.yaml").write_text(
        (copy / "recipe.yaml").read_text() + "trust_remote_code: [meta-llama/Llama-3.1-8B]\n"
    )
    assert rc.check_remote_code(rc.load(copy)) == []  # allowed by name


def test_a_tool_whose_ranks_interleave_a_characters_bytes_does_not_fail_the_stage(tmp_path, capsys):
    # two ranks writing one pipe can split a UTF-8 character (seen: a DPO run on 2 nodes died on byte 0xe2)
    code = "import sys; sys.stdout.buffer.write(b'step \\xe2 1\\n'); sys.stdout.flush()"
    p = venv.run("base", ["python", "-c", code], log=tmp_path / "log.txt")
    assert p.returncode == 0 and (tmp_path / "log.txt").read_text() == "step \ufffd 1\n"
