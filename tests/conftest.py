"""Test gating, test kinds, the shared tiny-model chain and the fixtures and helpers several test files use.

Every test has a kind marker (pytest.ini): unit, chain, slurm or gpu; a test without one fails collection
(`make test-fast` runs -m unit). GPU-only tests live in files named *_gpu.py and are collected only where CUDA
exists (as in open-instruct's conftest). The chain tests share one `make smoke` run per session (under
runs/test-chain). Test files import shared helpers from here, never from each other.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _has_cuda():
    return shutil.which("nvidia-smi") is not None


collect_ignore_glob = [] if _has_cuda() else ["*_gpu.py"]

KINDS = ("unit", "chain", "slurm", "gpu")


# `make test` runs on both cores (pytest-xdist, -n 2): the files whose tests share one long fixture run on one
# worker as one unit, so that the fixture is built once and no test rebuilds a stage another reads; every other
# test is a unit of its own. (xdist's own --dist loadgroup does not group under pytest 9: it renames node ids.)
GROUP_OF_FILE = {
    **dict.fromkeys(
        ["test_artifacts.py", "test_chain.py", "test_dpo_worker.py", "test_eval_local.py", "test_medprompt.py",
         "test_model_card.py", "test_reproduce.py", "test_stages.py"],
        "chain",
    ),
    "test_family.py": "qwen",
    "test_learning.py": "learning",  # its own kit's chain: beside the tiny chain, not after it
    "test_medprompt_serving.py": "serving",  # one vLLM server per module: its tests on one worker
    "test_slurm.py": "slurm",
}  # fmt: skip
GROUP_OF_FIXTURE = {"chain": "chain", "qwen_chain": "qwen", "slurm_chain": "slurm", "cluster": "slurm"}


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class Grouped(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return GROUP_OF_FILE.get(Path(nodeid.split("::")[0]).name, nodeid)

    return Grouped(config, log)


def pytest_collection_modifyitems(config, items):
    """Every test has a kind, and unit is never combined with another (before -m selects: all are checked); a test
    of a long fixture is in that fixture's group."""
    bad = []
    for item in items:
        for fixture, group in GROUP_OF_FIXTURE.items():
            if fixture in item.fixturenames and GROUP_OF_FILE.get(item.path.name) != group:
                bad.append(f"{item.nodeid}: uses `{fixture}`, so its file belongs to GROUP_OF_FILE's {group!r}")
        kinds = {m.name for m in item.iter_markers() if m.name in KINDS}
        if not kinds or ("unit" in kinds and len(kinds) > 1):
            bad.append(f"{item.nodeid}: {' + '.join(sorted(kinds)) or 'no kind'}")
    if bad:
        raise pytest.UsageError(
            f"tests need exactly one kind marker of {', '.join(KINDS)} (pytest.ini; unit alone) and their long "
            "fixture's group (GROUP_OF_FILE):\n  " + "\n  ".join(bad)
        )


def run_py(module, *args, check=True, timeout=1800, env=None):
    """Run `python -m module args` from the repository root (`env`: variables added); returns the CompletedProcess."""
    p = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], cwd=ROOT, text=True, capture_output=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    if check and p.returncode:
        raise AssertionError(f"{module} {args} exited {p.returncode}\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}")
    return p


def tool(stage, script, *args):
    """Run a scripts/tools/ entry in a stage env and return its JSON output."""
    from scripts.lib import venv

    p = venv.run(stage, [script, *args], capture=True)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def chain():
    """The smoke chain on the tiny model, run once per session: (runs root, run dir, smoke output)."""
    runs = ROOT / "runs" / "test-chain"
    # TRACKER=tensorboard: the tools' own event files, which the report's curves read
    p = run_py(
        "scripts.drivers.smoke", "--runs", runs, check=False, timeout=3000, env={"ALOE_MAKE_TRACKER": "tensorboard"}
    )
    print(p.stdout[-6000:])
    assert p.returncode == 0, p.stdout[-6000:] + p.stderr[-6000:]
    return runs, runs / "aloe-beta-8b-cpu-tiny", p.stdout


@pytest.fixture
def chat_server():
    """A local chat-completions server: (base url, every request body with its path and auth header, state).
    state["reply"](body) -> the text, state["status"] the HTTP status, state["tokens"](body) -> completion tokens."""
    seen = []
    state = {"reply": lambda body: "no", "status": 200, "tokens": lambda body: body["max_tokens"]}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
            out = json.dumps(
                {
                    "choices": [{"message": {"role": "assistant", "content": state["reply"](body)}}],
                    "usage": {"prompt_tokens": 11, "completion_tokens": state["tokens"](body)},
                }
            ).encode()
            self.send_response(state["status"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", seen, state
    httpd.shutdown()


@pytest.fixture
def server(chat_server):
    """The local chat server, with 5 completion tokens an answer."""
    chat_server[2]["tokens"] = lambda body: 5
    return chat_server


MODEL = "meta-llama/Llama-3.1-8B-Instruct"  # the cpu-tiny profile maps it (and Llama Guard 3) to the tiny instruct


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A runs root holding the tiny kit (built once, shared with the chain tests' copy)."""
    kit_root = ROOT / "runs" / "test-chain"
    run_py("scripts.make_tiny_kit", "--runs", kit_root)
    root = tmp_path_factory.mktemp("runs")
    (root / "tiny-kit").symlink_to(kit_root / "tiny-kit")
    return root


def check_recipes(*make_args):
    """`make -s check-recipes` with these make arguments; the CompletedProcess."""
    return subprocess.run(
        ["make", "-s", "check-recipes", *make_args], cwd=ROOT, text=True, capture_output=True, timeout=900
    )


# lm-eval's sample counts of the Table 9 tasks
SIZES = {
    "medmcqa": 4183,
    "medqa_4options": 1273,
    "pubmedqa": 500,
    "careqa_en": 5621,
    "mmlu_anatomy": 135,
    "mmlu_clinical_knowledge": 265,
    "mmlu_college_biology": 144,
    "mmlu_college_medicine": 173,
    "mmlu_medical_genetics": 100,
    "mmlu_professional_medicine": 272,
}


def key_names(d):
    """Every mapping key at any depth (dpo's `train.batch_size` is one key)."""
    if isinstance(d, dict):
        for k, v in d.items():
            yield k
            yield from key_names(v)
    elif isinstance(d, list):
        for v in d:
            yield from key_names(v)


def published_values_match_and_appear_once(recipe):
    """Every published value of recipes/<recipe> (recipes/published.yaml) holds, each set in one file only."""
    from scripts.lib import recipe as rc
    from scripts.lib import values

    r = rc.load(ROOT / "recipes" / recipe)
    published, released = values.published_for(r)
    assert released and len(published["sft"]) > 10, "recipes/published.yaml lacks this model"
    assert values.deviations(r, published) == []
    for stem, keys in published.items():
        for key in keys:
            parts = [p for p in key.split(".") if not p.isdigit()]
            leaf = key.split("args.")[-1] if "args." in key else parts[-1]
            holders = sorted({s for s, d in r.raw.items() if leaf in set(key_names(d))})
            # per-stage or per-model keys recur by design; merge.yaml's base_model is the merge base (a choice)
            if leaf not in ("gpus", "nodes", "model", "adam.lr", "chunks", "base_model"):
                assert holders == [stem], f"{leaf} is set in {holders}, expected only {stem}.yaml"


VALUE_LINE = re.compile(r"^\s*(- )?[\w.]+:\s+[^#\s]")
UNTAGGED_OK = {
    "ds_type",
    "field_messages",
    "path",
    "name",
    "released_as",
    "base_config",
    "files",
    "output_dir",
    "dataset_prepared_path",
    "data.chosen_key",
    "data.rejected_key",
    "sft",
    "merge",
    "dpo",
    "- medqa_train",
    "- medmcqa_train",
}


def every_value_says_where_it_comes_from(recipe):
    """Every value line of recipes/<recipe>/*.yaml carries its [P]/[D]/[C] provenance tag."""
    missing = []
    for f in sorted((ROOT / "recipes" / recipe).glob("*.yaml")):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            key = line.strip().lstrip("- ").split(":")[0]
            if VALUE_LINE.match(line) and key not in UNTAGGED_OK and not re.search(r"\[(P|D|C)\]", line):
                if f.name == "eval.yaml" and line.strip().startswith("- "):
                    continue
                missing.append(f"{f.name}:{n}: {line.strip()}")
    assert not missing, "values without a [P]/[D]/[C] tag:\n" + "\n".join(missing)
