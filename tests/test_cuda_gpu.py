"""The CUDA paths, on a GPU machine's own torch and transformers (collected only where CUDA exists:
tests/conftest.py): the tiny kit generates in bf16, mergekit merges the recipe's DARE-TIES on CUDA
reproducibly, and the Medprompt HF backend generates on the GPU.

  python -m pytest tests/test_cuda_gpu.py      (mergekit may come as a carried wheel; without it that test skips)
"""

import json
import subprocess
import sys

import pytest
from conftest import ROOT

from scripts.lib import recipe as rc

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    out = tmp_path_factory.mktemp("kit")
    subprocess.run([sys.executable, str(ROOT / "scripts/tools/build_tiny_kit.py"), out], check=True, cwd=ROOT)
    return out


def generate(model_dir, dtype, device, n=8):
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Which drug treats asthma?"}], tokenize=False, add_generation_prompt=True
    )
    ids = tok(prompt, add_special_tokens=False, return_tensors="pt").to(device)
    with torch.no_grad():
        logits = model(**ids).logits
        out = model.generate(**ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id)
    return model, logits, out[0, ids["input_ids"].shape[1] :]


def test_the_tiny_kit_generates_in_bf16_on_cuda_close_to_fp32(kit):
    model, logits, new = generate(kit / "instruct", torch.bfloat16, "cuda")
    assert next(model.parameters()).dtype == torch.bfloat16 and logits.is_cuda
    assert torch.isfinite(logits).all() and new.shape[0] == 8
    _, ref, _ = generate(kit / "instruct", torch.float32, "cpu")
    # bf16 keeps 8 bits of mantissa: the next-token distribution stays within a few hundredths of fp32's
    p, q = logits[0, -1].float().softmax(-1).cpu(), ref[0, -1].softmax(-1)
    assert (p - q).abs().max().item() < 0.05


def test_mergekit_merges_the_recipes_dare_ties_on_cuda_reproducibly(kit, tmp_path):
    pytest.importorskip("mergekit")
    sft = transformers.AutoModelForCausalLM.from_pretrained(kit / "instruct")  # a stand-in for the SFT output
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for w in sft.parameters():
            w.add_(0.01 * torch.randn(w.shape, generator=g))
    sft.save_pretrained(tmp_path / "sft")
    transformers.AutoTokenizer.from_pretrained(kit / "instruct").save_pretrained(tmp_path / "sft")
    cfg = rc.load(ROOT / "recipes/aloe-beta-8b", profile="cpu-tiny", kit=kit).files["merge"]
    cfg["models"][0]["model"] = str(tmp_path / "sft")
    (tmp_path / "merge.yaml").write_text(json.dumps(cfg))
    outs = []
    for name in ("a", "b"):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "mergekit.scripts.run_yaml",
                tmp_path / "merge.yaml",
                tmp_path / name,
                "--cuda",
                "--random-seed",
                "42",
            ],
            check=True,
            cwd=ROOT,
        )
        outs.append((tmp_path / name / "model.safetensors").read_bytes())
    assert outs[0] == outs[1]
    _, logits, new = generate(tmp_path / "a", torch.bfloat16, "cuda")
    assert torch.isfinite(logits).all() and new.shape[0] == 8


def test_medprompt_hf_backend_generates_on_cuda(kit):
    from medprompt.generate import HFGenerator

    gen = HFGenerator(str(kit / "instruct"), dtype="bfloat16", batch_size=2)
    assert gen.device == "cuda" and next(gen.model.parameters()).is_cuda
    msgs = [
        [{"role": "user", "content": f"Which drug treats {c}? A. x B. y C. z D. w"}]
        for c in ("asthma", "anemia", "gout")
    ]
    out = gen.generate(msgs, seeds=[0, 0, 0], max_tokens=12)
    assert len(out) == 3 and all(0 < c.completion_tokens <= 12 and c.prompt_tokens > 0 for c in out)
    again = gen.generate(msgs, seeds=[0, 0, 0], max_tokens=12)  # greedy: the same text on a rerun
    assert [c.text for c in out] == [c.text for c in again]
