"""Test gating and the shared tiny-model chain.

GPU-only tests live in files named *_gpu.py and are collected only where CUDA exists (as in
open-instruct's conftest). The chain tests share one `make smoke` run per session (under runs/test-chain).
"""

import json
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


def run_py(module, *args, check=True, timeout=1800):
    """Run `python -m module args` from the repository root; returns the CompletedProcess."""
    p = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], cwd=ROOT, text=True, capture_output=True, timeout=timeout
    )
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
    p = run_py("scripts.drivers.smoke", "--runs", runs, check=False, timeout=3000)
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
