"""Recipes: tool-native files plus a profile overlay, loaded into a Recipe (the files as written and as profiled),
their own keys checked against the schema. The YAML with line numbers is yamlfiles.py, the hardware and batch
arithmetic hardware.py, what the tools run render.py.

A recipe folder holds recipe.yaml (what the tools cannot say: hardware, SFT total batch, merge seed),
sft.yaml (axolotl), merge.yaml (mergekit), dpo.yaml (OpenRLHF plan), medprompt.yaml and eval.yaml.
A profile (recipes/profiles/<name>.yaml) overlays each file: a null removes a key, `models` maps hub ids
to local paths, `{kit}` is the tiny-model kit.
"""

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

from scripts.core import ROOT

from . import stages
from .yamlfiles import Problem, RecipeError, locate, map_values, overlay, read_yaml, suggest

FILES = ("recipe", "sft", "merge", "dpo", "medprompt", "eval")
PROFILES = ROOT / "recipes" / "profiles"
TASKS = ROOT / "recipes" / "tasks"  # the repository's lm-eval tasks: open/ (Tables 11-12), mcqa/ (aloe_pubmedqa)
DEFAULT_KIT = stages.folder("tiny-kit", ROOT / "runs", "")

# Our own files' schemas (the tool-native sft.yaml and merge.yaml are checked by their tools).
SCHEMA = {
    "recipe": {
        "name",
        "released_as",
        "base_config",
        "hardware",
        "sft_total_batch",
        "merge_seed",
        "trust_remote_code",
        "max_reject_rate",  # optional: data_prep.normalize.MAX_REJECT_RATE
    },
    "dpo": {"args", "stages"},
    "dpo.stage": {"name", "dataset", "config", "files", "chunks", "args"},  # config: the dataset's hub config
    "medprompt": {
        "embedding_model",
        "k",
        "ensembles",
        "choice_shuffle",
        "reranker",
        "database",
        "temperature",
        "top_p",
        "max_tokens",
        "max_attempts",
        "retry_extra_tokens",
        "retry_extra_temperature",
        "retry",
        "adaptive",
        "round_size",
        "seed",
    },
    "eval": {
        "tasks",
        "open_tasks",
        "general_tasks",
        "num_fewshot",
        "apply_chat_template",
        "batch_size",
        "dtype",
        "seed",
        "max_gen_toks",
    },
    "profile": {"extends", "models", *FILES},
}


@dataclass
class Recipe:
    path: Path
    raw: dict  # file name -> dict as written
    files: dict  # file name -> dict after the profile
    profile: str | None = None
    world_size: int | None = None  # None: the recipe's published hardware
    kit: Path = DEFAULT_KIT
    layout: dict = field(default_factory=dict)  # stage -> [nodes, gpus]: a LAYOUT= override of `hardware`
    models: dict = field(default_factory=dict)  # the profile's stand-ins: hub id -> local model ({kit} unfilled)

    @property
    def remote_code(self) -> list:
        """recipe.yaml `trust_remote_code`: the models whose own code (config.json `auto_map`) may run; none unless
        named there."""
        return list(self.files["recipe"].get("trust_remote_code") or [])

    @property
    def tasks(self) -> list:
        """The Table 9 benchmarks its eval.yaml names (lm-eval task names)."""
        return self.files["eval"]["tasks"]

    @property
    def name(self):
        return self.path.name + (f"-{self.profile}" if self.profile else "")

    def file(self, stem):
        return self.path / f"{stem}.yaml"

    def rel(self, stem):
        p = self.file(stem)
        try:
            return str(p.relative_to(ROOT))
        except ValueError:
            return str(p)

    def problem(self, stem, key, message):
        return Problem(self.rel(stem), key, message, locate(self.file(stem), key))

    def world(self, entry):
        return self.world_size or self.hardware(entry)["gpus"] or 1

    def hardware(self, entry) -> dict:
        """A `hardware` entry (the layout of the jobs that run under it) with the layout override applied."""
        h = dict(self.files["recipe"]["hardware"][entry])
        if entry in self.layout:
            h["nodes"], h["gpus"] = self.layout[entry]
        return h


def read_profile(name: str, seen=()) -> dict:
    """recipes/profiles/<name>.yaml, laid over the profile it `extends` (if any)."""
    path = PROFILES / f"{name}.yaml"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", str(name)) or not path.exists():
        known = sorted(p.stem for p in PROFILES.glob("*.yaml"))
        raise RecipeError([Problem(str(path), "-", f"no such profile; known: {known}")])
    prof = read_yaml(path)
    unknown = set(prof) - SCHEMA["profile"]
    if unknown:
        raise RecipeError(
            [
                Problem(str(path), k, "unknown profile key" + suggest(k, SCHEMA["profile"]), locate(path, k))
                for k in sorted(unknown)
            ]
        )
    parent = prof.pop("extends", None)
    if parent in (name, *seen):
        raise RecipeError([Problem(str(path), "extends", f"profiles extend each other in a loop: {parent}")])
    return overlay(read_profile(parent, (*seen, name)), prof, keep_none=True) if parent else prof


def load(recipe_dir, profile: str | None = None, world_size: int | None = None, kit: Path | None = None) -> Recipe:
    path = Path(recipe_dir).resolve()
    if not path.is_dir():
        raise RecipeError([Problem(str(recipe_dir), "-", "recipe folder not found")])
    raw, problems = {}, []
    for stem in FILES:
        try:
            raw[stem] = read_yaml(path / f"{stem}.yaml")
        except RecipeError as e:
            problems += e.problems
    if problems:
        raise RecipeError(problems)
    files = copy.deepcopy(raw)
    kit = Path(kit or DEFAULT_KIT)
    models = {}
    if profile:
        prof = read_profile(profile)
        for stem in FILES:
            files[stem] = overlay(files[stem], prof.get(stem) or {})
        models = prof.get("models") or {}
        files = {
            stem: map_values(d, lambda v: models.get(v, v) if isinstance(v, str) else v) for stem, d in files.items()
        }
        files = {
            stem: map_values(d, lambda v: v.replace("{kit}", str(kit)) if isinstance(v, str) else v)
            for stem, d in files.items()
        }
    return Recipe(path, raw, files, profile, world_size, kit, models=models)


def check_schema(r: Recipe):
    """Unknown keys in the files this project defines."""
    out = []
    for stem in ("recipe", "dpo", "medprompt", "eval"):
        for k in r.raw[stem]:
            if k not in SCHEMA[stem]:
                out.append(r.problem(stem, k, "unknown key" + suggest(k, SCHEMA[stem])))
    for i, st in enumerate(r.raw["dpo"].get("stages") or []):
        for k in st:
            if k not in SCHEMA["dpo.stage"]:
                out.append(r.problem("dpo", k, f"unknown key in stages[{i}]" + suggest(k, SCHEMA["dpo.stage"])))
    return out


def check_remote_code(r: Recipe):
    """A tool-native file that turns a model's own code on (axolotl `trust_remote_code: true`, an OpenRLHF
    `*trust_remote_code` flag) is a problem unless recipe.yaml `trust_remote_code` names that model."""
    out = []
    if r.files["sft"].get("trust_remote_code") and r.files["sft"].get("base_model") not in r.remote_code:
        out.append(r.problem("sft", "trust_remote_code", "runs the base model's own code: name it in recipe.yaml "
                             "trust_remote_code to allow it"))  # fmt: skip
    for k, v in (r.files["dpo"].get("args") or {}).items():
        if k.endswith("trust_remote_code") and v:
            out.append(r.problem("dpo", k, "runs the model's own code: name it in recipe.yaml trust_remote_code"))
    return out
