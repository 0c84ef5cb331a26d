"""Port a recipe to another base model: a new recipe folder, then `make check-recipes RECIPE=<it>`.

Copies the source recipe's files (comments and tags kept) and changes what depends on the base model: the base
and instruct ids everywhere, the chat template, turn terminator and pad token (by the base's
model_type, or given), the base's config.json for offline validation (copied into the folder as
base_config.json: from --config, from a local base directory, else from the hub), the hardware and the
gradient accumulation that reaches the source's total batch on it. `released_as` and the source's wall times
are removed: a port is not a released model, so check-recipes shows its deviations from the published values
as information. Prints every value published for the source model (recipes/published.yaml), to review for
the new base.

  python -m scripts.drivers.new_recipe --base mistralai/Mistral-7B-v0.3 --name mistral-aloe-7b --config config.json \\
      --instruct mistralai/Mistral-7B-Instruct-v0.3 --chat-template mistral_v3_tekken --eot-token "</s>"
  python -m scripts.drivers.new_recipe --from recipes/aloe-beta-8b --base Qwen/Qwen2.5-7B --name qwen-port --sft-gpus 16
"""

import argparse
import json
import os
import re
import sys
import urllib.parse
import urllib.request
from pathlib import Path

from scripts import core
from scripts.core import table
from scripts.lib import cli, hardware, values, yamlfiles
from scripts.lib import recipe as rc

# model_type -> (axolotl chat_template, turn terminator, pad token, the template's role for a tool's result): the
# released Aloe recipes' choices per family
FAMILIES = {
    "llama": ("llama3", "<|eot_id|>", "<|finetune_right_pad_id|>", "ipython"),
    "qwen2": ("qwen_25", "<|im_end|>", "<|endoftext|>", "tool"),
}
PORTED = "# [C] new_recipe"


class SameHostAuth(urllib.request.HTTPRedirectHandler):
    """Follow redirects, sending the hub token only to the host it was given for (urllib would forward it)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).hostname != urllib.parse.urlsplit(req.full_url).hostname:
            new.remove_header("Authorization")
        return new


def base_config(base: str, given: str | None) -> dict:
    """The base's config.json: the given file, the local base directory's, else the hub's (HF_TOKEN if gated)."""
    local = Path(given) if given else Path(base) / "config.json"
    if local.exists():
        return json.loads(local.read_text())
    if given:
        raise SystemExit(f"new_recipe: --config {given}: no such file")
    url = f"https://huggingface.co/{base}/resolve/main/config.json"
    headers = {"Authorization": f"Bearer {os.environ['HF_TOKEN']}"} if os.environ.get("HF_TOKEN") else {}
    try:
        with urllib.request.build_opener(SameHostAuth).open(
            urllib.request.Request(url, headers=headers), timeout=30
        ) as f:
            return json.loads(f.read())
    except OSError as e:
        raise SystemExit(f"new_recipe: cannot read {url} ({e}); pass the base's config.json with --config") from e


def set_line(text: str, path: Path, key: str, value: str, why: str = "") -> str:
    """The line of a dotted key (as yamlfiles.key_lines numbers them) as `value  # [C] new_recipe: why`, indented and
    its comment aligned as the original's; the original's continuation comment lines go with it."""
    n = yamlfiles.key_lines(text)[0].get(key)
    if n is None:
        raise SystemExit(f"new_recipe: {path.name} has no key {key}")
    lines = text.splitlines(keepends=True)
    old = lines[n - 1]
    head = re.match(r"\s*(- )?", old).group(0) + value
    pad = max(old.find(" # ") + 1 - len(head), 2)  # the original's comment column, else two spaces
    lines[n - 1] = head + " " * pad + PORTED + (f": {why}" if why else "") + "\n"
    while n < len(lines) and re.match(r"^\s{20,}#", lines[n]):  # a comment continued on the next lines
        del lines[n]
    return "".join(lines)


def batch(total: int, micro: int, gpus: int, what: str) -> int:
    if total % (micro * gpus):
        raise SystemExit(
            f"new_recipe: {what}: a total batch of {total} cannot be reached on {gpus} GPUs with micro "
            f"batch {micro}; GPU counts that work: {hardware.divisors(total // micro)}"
        )
    return total // (micro * gpus)


def port(src: rc.Recipe, out: Path, base: str, instruct: str, cfg: dict, template: tuple, hw: dict) -> dict:
    """Write the new folder; returns its texts by file stem."""
    s = src.raw
    ids = [
        (s["merge"]["models"][-1]["model"], instruct),
        (s["sft"]["base_model"], base),
    ]
    note = (
        f"# Ported by scripts.drivers.new_recipe from recipes/{src.path.name} ({s['recipe'].get('released_as')}) to {base}:\n"
        f"# [P] tags name what was published for the source model, not for this base; review them.\n"
    )
    texts = {}
    for stem in rc.FILES:
        text = src.file(stem).read_text()
        for i, (old, _) in enumerate(ids):  # markers first: the instruct id contains the base id
            text = text.replace(old, f"\0{i}\0")
        for i, (_, new) in enumerate(ids):
            text = text.replace(f"\0{i}\0", new)
        texts[stem] = note + text
    chat, eot, pad, tool = template
    t, f = texts["sft"].replace(s["sft"]["eot_tokens"][0], eot), src.file("sft")  # the comments that name it too
    t = set_line(t, f, "chat_template", f"chat_template: {chat}", "the template of the base's family")
    t = set_line(t, f, "eot_tokens", f'eot_tokens: ["{eot}"]', "the turn terminator the template closes turns with")
    t = set_line(t, f, "special_tokens.pad_token", f"pad_token: {pad}", "the base family's pad token")
    roles = f"roles: {{user: [user], assistant: [assistant], system: [system], {tool}: [tool]}}"
    t = set_line(t, f, "datasets.0.roles", roles, "the template's role for a tool's result")
    micro = int(s["sft"].get("micro_batch_size", 1))
    ga = batch(int(s["recipe"]["sft_total_batch"]), micro, hw["sft"]["gpus"], "SFT")
    t = set_line(
        t,
        f,
        "gradient_accumulation_steps",
        f"gradient_accumulation_steps: {ga}",
        f"{s['recipe']['sft_total_batch']} / ({micro} x {hw['sft']['gpus']} GPUs)",
    )
    texts["sft"] = t
    dargs = s["dpo"]["args"]
    batch(int(dargs["train.batch_size"]), int(dargs.get("train.micro_batch_size", 1)), hw["dpo"]["gpus"], "DPO")
    t, f = texts["recipe"], src.file("recipe")
    t = "".join(x for x in t.splitlines(keepends=True) if not x.startswith("released_as:"))
    t = set_line(t, f, "name", f"name: {out.name}", "a port, not a released model (no released_as)")
    t = set_line(t, f, "base_config", f"base_config: {rel(out / 'base_config.json')}", "the base's public config.json")
    for stage, h in hw.items():
        t = set_line(
            t, f, f"hardware.{stage}", f"{stage}: {{gpus: {h['gpus']}, nodes: {h['nodes']}}}", "the port's hardware"
        )
    texts["recipe"] = t
    out.mkdir(parents=True)
    for stem, text in texts.items():
        (out / f"{stem}.yaml").write_text(text)
    (out / "base_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return texts


def rel(p: Path) -> str:
    p = p.resolve()
    return str(p.relative_to(core.ROOT)) if p.is_relative_to(core.ROOT) else str(p)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="src", default="recipes/aloe-beta-8b", help="source recipe folder")
    ap.add_argument("--base", required=True, help="the new pre-trained base: hub id or local directory")
    ap.add_argument("--name", required=True, help="the new folder: a name (under recipes/) or a path")
    ap.add_argument("--instruct", help="the merge partner (default: <base>-Instruct)")
    ap.add_argument("--config", help="the base's config.json, when the hub is out of reach")
    ap.add_argument("--chat-template", help="axolotl chat_template (default: by the base's model_type)")
    ap.add_argument("--eot-token", help="the turn terminator the template ends turns with")
    ap.add_argument("--pad-token")
    ap.add_argument("--tool-role", help="the template's role for a tool's result (Llama 3.1 ipython, Qwen2.5 tool)")
    for stage in ("sft", "dpo", "merge", "medprompt", "eval"):
        ap.add_argument(f"--{stage}-gpus", type=int, help=f"GPUs of the {stage} stage (default: the source's)")
        ap.add_argument(f"--{stage}-nodes", type=int)
    a = ap.parse_args(argv)
    out = Path(a.name) if "/" in a.name else core.ROOT / "recipes" / a.name
    if out.exists():
        raise SystemExit(f"new_recipe: {out} exists")
    src = rc.load(a.src)
    cfg = base_config(a.base, a.config)
    family = FAMILIES.get(cfg.get("model_type"), (None,) * 4)
    template = tuple(
        given or known for given, known in zip((a.chat_template, a.eot_token, a.pad_token, a.tool_role), family)
    )
    if None in template:
        raise SystemExit(
            f"new_recipe: no chat template known for model_type {cfg.get('model_type')!r} "
            f"(known: {sorted(FAMILIES)}): pass --chat-template, --eot-token, --pad-token and --tool-role"
        )
    hw = {
        stage: {
            "gpus": getattr(a, f"{stage}_gpus") if getattr(a, f"{stage}_gpus") is not None else h["gpus"],
            "nodes": getattr(a, f"{stage}_nodes") or h["nodes"],
        }
        for stage, h in src.raw["recipe"]["hardware"].items()
        if stage != "data"
    }
    port(src, out, a.base.rstrip("/"), a.instruct or f"{a.base.rstrip('/')}-Instruct", cfg, template, hw)
    new = rc.load(out)
    published, _ = values.published_for(src)
    rows = sorted(
        (
            (
                new.rel(stem),
                yamlfiles.locate(new.file(stem), k) or 0,
                k,
                v,
                values.flatten(new.raw[stem]).get(k, "<absent>"),
            )
            for stem, keys in published.items()
            for k, v in keys.items()
        ),
        key=lambda x: x[:2],
    )
    rows = [(f"{f}:{n or '-'}", *rest) for f, n, *rest in rows]
    print(
        f"wrote {rel(out)} ({src.path.name} -> {a.base})\n\nvalues published for {src.raw['recipe'].get('released_as')}"
        f" (recipes/published.yaml): review each for the new base\n"
    )
    print(table(["file", "key", f"published for {src.path.name}", "in the port"], rows))
    print(f"\nnext: make check-recipes RECIPE={rel(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.edge(main))
