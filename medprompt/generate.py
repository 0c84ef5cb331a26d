"""Generation backends with one interface: generate(list of chat messages, seeds, max_tokens) -> Completions.

  hf      HF transformers, batched with left padding (CPU or GPU). With temperature 0 (greedy) the output
          of a prompt does not depend on its batch; sampling is seeded per batch only.
  vllm    vLLM on GPU, one seeded SamplingParams per request (reproducible per request).
  openai  any OpenAI-compatible server (vLLM serve, TGI, ...): POST {base_url}/chat/completions.
"""
import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int


class HFGenerator:
    def __init__(self, model: str, dtype: str = "float32", batch_size: int = 16, temperature: float = 0.0,
                 top_p: float = 1.0, device: str | None = None):
        import torch
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

    def _count(self, ids):
        n = 0
        for t in ids.tolist():
            n += 1
            if t in self.eos:
                break
        return n

    def generate(self, messages: list, seeds: list, max_tokens: int) -> list:
        out = []
        for b in range(0, len(messages), self.batch_size):
            chunk = messages[b:b + self.batch_size]
            prompts = [self.tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in chunk]
            enc = self.tok(prompts, add_special_tokens=False, padding=True, return_tensors="pt").to(self.device)
            self.torch.manual_seed(seeds[b])
            sample = self.temperature > 0
            with self.torch.no_grad():
                gen = self.model.generate(**enc, max_new_tokens=max_tokens, do_sample=sample,
                                          temperature=self.temperature if sample else None,
                                          top_p=self.top_p if sample else None, pad_token_id=self.tok.pad_token_id)
            new = gen[:, enc["input_ids"].shape[1]:]
            for i, row in enumerate(new):
                out.append(Completion(self.tok.decode(row, skip_special_tokens=True),
                                      int(enc["attention_mask"][i].sum()), self._count(row)))
        return out


class VLLMGenerator:
    def __init__(self, model: str, dtype: str = "bfloat16", temperature: float = 0.0, top_p: float = 1.0,
                 seed: int = 0, **llm_kwargs):
        from vllm import LLM, SamplingParams
        self.SamplingParams = SamplingParams
        self.llm = LLM(model=model, dtype=dtype, seed=seed, **llm_kwargs)
        self.temperature, self.top_p = temperature, top_p

    def generate(self, messages: list, seeds: list, max_tokens: int) -> list:
        params = [self.SamplingParams(seed=s, max_tokens=max_tokens, temperature=self.temperature, top_p=self.top_p)
                  for s in seeds]
        res = self.llm.chat(messages, params, use_tqdm=True)
        return [Completion(r.outputs[0].text, len(r.prompt_token_ids), len(r.outputs[0].token_ids)) for r in res]


class OpenAIGenerator:
    def __init__(self, model: str, base_url: str, temperature: float = 0.0, top_p: float = 1.0,
                 api_key: str = "EMPTY", workers: int = 16):
        self.model, self.url = model, base_url.rstrip("/") + "/chat/completions"
        self.temperature, self.top_p, self.key, self.workers = temperature, top_p, api_key, workers

    def _one(self, args):
        msgs, seed, max_tokens = args
        body = json.dumps({"model": self.model, "messages": msgs, "max_tokens": max_tokens, "seed": seed,
                           "temperature": self.temperature, "top_p": self.top_p}).encode()
        req = urllib.request.Request(self.url, body, {"Content-Type": "application/json",
                                                      "Authorization": f"Bearer {self.key}"})
        with urllib.request.urlopen(req, timeout=600) as r:
            data = json.loads(r.read())
        usage = data.get("usage") or {}
        return Completion(data["choices"][0]["message"]["content"] or "", usage.get("prompt_tokens", 0),
                          usage.get("completion_tokens", 0))

    def generate(self, messages: list, seeds: list, max_tokens: int) -> list:
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(self._one, [(m, s, max_tokens) for m, s in zip(messages, seeds)]))


def make(backend: str, model: str, **kw):
    if backend == "hf":
        return HFGenerator(model, **{k: v for k, v in kw.items() if k in ("dtype", "batch_size", "temperature", "top_p")})
    if backend == "vllm":
        return VLLMGenerator(model, **{k: v for k, v in kw.items()
                                       if k in ("dtype", "temperature", "top_p", "seed", "tensor_parallel_size")})
    if backend == "openai":
        return OpenAIGenerator(model, kw["base_url"], kw.get("temperature", 0.0), kw.get("top_p", 1.0))
    raise ValueError(f"unknown backend {backend!r}: hf, vllm or openai")
