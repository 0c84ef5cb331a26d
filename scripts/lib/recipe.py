"""Recipes: tool-native files plus a profile overlay, rendered and checked for batch arithmetic.

A recipe folder holds recipe.yaml (what the tools cannot say: hardware, SFT total batch, merge seed),
sft.yaml (axolotl), merge.yaml (mergekit), dpo.yaml (OpenRLHF plan), medprompt.yaml and eval.yaml.
A profile (recipes/profiles/<name>.yaml) overlays each file: a null removes a key, `models` maps hub ids
to local paths, `{kit}` is the tiny-model kit.
"""

import copy
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from scripts.core import ROOT, AloeError

from . import stages

FILES = ("recipe", "sft", "merge", "dpo", "medprompt", "eval")
PROFILES = ROOT / "recipes" / "profiles"
TASKS = ROOT / "recipes" / "tasks"  # the repository's lm-eval tasks: open/ (Tables 11-12), mcqa/ (aloe_pubmedqa)
DEFAULT_KIT = stages.folder("tiny-kit", ROOT / "runs", "")

# the stages that run as jobs of their own (recipe.yaml `hardware` has one entry each)
HARDWARE_ENTRIES = ("data", "sft", "merge", "dpo", "medprompt", "eval")
ONE_NODE = ("data", "merge", "medprompt", "eval")  # one process on one node: data_prep, mergekit, vLLM or HF
# Our own files' schemas (the tool-native sft.yaml and merge.yaml are checked by their tools).
SCHEMA = {
    "recipe": {"name", "released_as", "base_config", "hardware", "sft_total_batch", "merge_seed", "trust_remote_code"},
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
class Problem:
    file: str
    key: str
    message: str
    line: int | None = None

    def __str__(self):
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}"


class RecipeError(AloeError):
    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def key_lines(text: str) -> tuple[dict, list]:
    """({dotted key: line} for every mapping key, [(dotted key, line)] of keys written twice in one mapping).
    List items are numbered (`models.0.model`); OpenRLHF's dotted keys stay one component (`args.adam.lr`)."""
    lines, dups = {}, []

    def walk(node, prefix):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for k, v in node.value:
                dotted = prefix + str(k.value)
                if k.value in seen:
                    dups.append((dotted, k.start_mark.line + 1))
                seen.add(k.value)
                lines.setdefault(dotted, k.start_mark.line + 1)
                walk(v, dotted + ".")
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                lines.setdefault(f"{prefix}{i}", v.start_mark.line + 1)
                walk(v, f"{prefix}{i}.")

    walk(yaml.compose(text, Loader=yaml.SafeLoader), "")
    return lines, dups


def locate(path: Path, key: str) -> int | None:
    """Line of a key in a YAML file: the dotted key itself, else the first key it ends (best effort)."""
    try:
        lines = key_lines(Path(path).read_text())[0]
    except (OSError, yaml.YAMLError):
        return None
    if key in lines:
        return lines[key]
    return next((n for k, n in lines.items() if k.endswith("." + key)), None)


def suggest(key, known):
    m = difflib.get_close_matches(key, list(known), n=1, cutoff=0.75)
    return f" (did you mean {m[0]!r}?)" if m else ""


def overlay(base, over, keep_none=False):
    """Deep-merge `over` onto `base`; a None in `over` deletes the key (or is kept, to stack two
    overlays); lists are replaced."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if v is None and not keep_none:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = overlay(out[k], v, keep_none)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _map_values(obj, fn):
    if isinstance(obj, dict):
        return {k: _map_values(v, fn) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_map_values(v, fn) for v in obj]
    return fn(obj)


def _as_map(x):
    return dict(enumerate(x)) if isinstance(x, list) else x


def diff(base, new, prefix=""):
    """(key, before, after) for every leaf a profile changed; lists of equal length are compared item-wise."""
    rows = []
    for k in sorted(set(base) | set(new), key=str):
        a, b = base.get(k, "<absent>"), new.get(k, "<absent>")
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            a, b = _as_map(a), _as_map(b)
        if isinstance(a, dict) and isinstance(b, dict):
            rows += diff(a, b, f"{prefix}{k}.")
        elif a != b:
            rows.append((f"{prefix}{k}", a, b))
    return rows


def read_yaml(path: Path):
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise RecipeError([Problem(str(path), "-", "file is missing")])
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise RecipeError([Problem(str(path), "-", f"not valid YAML: {e}", line + 1 if line is not None else None)])
    if not isinstance(data, dict):
        raise RecipeError([Problem(str(path), "-", "expected a mapping at the top level")])
    dups = key_lines(path.read_text())[1]  # YAML keeps the last of two equal keys without a word
    if dups:
        raise RecipeError(
            [Problem(str(path), k, "key written twice in one mapping (YAML keeps only the last)", n) for k, n in dups]
        )
    return data


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


def declared_world(r: Recipe, stage: str) -> int:
    """Ranks of a stage on the recipe's (or profile's) declared hardware; a CPU-only stage has one."""
    return int(r.files["recipe"]["hardware"][stage]["gpus"]) or 1


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
            stem: _map_values(d, lambda v: models.get(v, v) if isinstance(v, str) else v) for stem, d in files.items()
        }
        files = {
            stem: _map_values(d, lambda v: v.replace("{kit}", str(kit)) if isinstance(v, str) else v)
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
    return out + check_hardware(r)


def check_hardware(r: Recipe):
    """recipe.yaml `hardware`: one {gpus, nodes} entry per stage job, GPUs spread evenly over the nodes."""
    hw, out = r.files["recipe"].get("hardware") or {}, []
    for entry in sorted(set(hw) | set(HARDWARE_ENTRIES)):
        h = r.hardware(entry) if isinstance(hw.get(entry), dict) else hw.get(entry)  # with a LAYOUT= override
        if entry not in HARDWARE_ENTRIES:
            out.append(r.problem("recipe", entry, "unknown hardware entry" + suggest(entry, HARDWARE_ENTRIES)))
        elif not isinstance(h, dict) or not isinstance(h.get("gpus"), int) or not isinstance(h.get("nodes"), int):
            out.append(r.problem("recipe", "hardware", f"hardware.{entry} needs integer gpus and nodes"))
        elif h["nodes"] < 1 or h["gpus"] % h["nodes"]:
            out.append(r.problem("recipe", entry, f"{h['gpus']} GPUs cannot be spread evenly over {h['nodes']} nodes"))
        elif entry in ONE_NODE and h["nodes"] != 1:
            out.append(r.problem("recipe", entry, f"{entry} runs as one process (vLLM tensor parallel): one node only"))
    return out


@dataclass(frozen=True)
class Batch:
    """The batch arithmetic of a training stage: micro x accumulation x world size = total (problems: why not)."""

    world: int
    micro: int
    accum: int | None  # None: no whole number reaches the total on this world size
    total: int
    problems: list = field(default_factory=list)

    def numbers(self) -> dict:
        """The manifest's keys that decide the optimisation."""
        return {
            "world_size": self.world,
            "micro_batch": self.micro,
            "grad_accum": self.accum,
            "total_batch": self.total,
        }

    def __str__(self):
        return f"{self.micro} x {self.accum} x {self.world} = {self.total}"


def sft_batch(r: Recipe) -> Batch:
    """With an explicit world size, grad accum is recomputed; on the declared layout, the file's must fit it."""
    sft, total = r.files["sft"], int(r.files["recipe"]["sft_total_batch"])
    micro, world = int(sft.get("micro_batch_size", 1)), r.world("sft")
    if world == declared_world(r, "sft"):
        ga = int(sft.get("gradient_accumulation_steps", 1))
        if micro * ga * world != total:
            why = (f"micro batch {micro} x grad accum {ga} x {world} GPUs = {micro * ga * world}, "
                   f"but the total batch (recipe.yaml sft_total_batch) is {total}")  # fmt: skip
            return Batch(world, micro, ga, total, [r.problem("sft", "gradient_accumulation_steps", why)])
        return Batch(world, micro, ga, total)
    if total % (micro * world):
        return Batch(world, micro, None, total, [unreachable(r, "sft", "micro_batch_size", total, micro, world)])
    return Batch(world, micro, total // (micro * world), total)


def dpo_batch(r: Recipe) -> Batch:
    args = r.files["dpo"].get("args") or {}
    total, micro, world = (
        int(args.get("train.batch_size", 0)),
        int(args.get("train.micro_batch_size", 1)),
        r.world("dpo"),
    )
    if total <= 0 or total % (micro * world):
        return Batch(world, micro, None, total, [unreachable(r, "dpo", "train.batch_size", total, micro, world)])
    return Batch(world, micro, total // (micro * world), total)


BATCH = {"sft": sft_batch, "dpo": dpo_batch}  # hardware entry -> its batch arithmetic (the training stages)


def unreachable(r: Recipe, stem: str, key: str, total: int, micro: int, world: int) -> Problem:
    """A total batch that micro batch x world size does not divide, with the world sizes that would."""
    return r.problem(
        stem,
        key,
        f"a total batch of {total} cannot be reached on {world} GPUs with micro batch {micro} "
        f"({total} is not a multiple of {micro * world}); world sizes that work: {divisors(max(total, 1) // micro)}",
    )


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def dpo_runs(r: Recipe, files_for=None):
    """Expand the DPO plan into runs: [{phase, index, of, data, args}] in order (a phase: one entry of dpo.yaml
    `stages`, stage1 = the chunks, stage2 = red team); model chaining is the caller's."""
    plan = r.files["dpo"]
    runs = []
    for st in plan["stages"]:
        n = int(st.get("chunks", 1))
        for i in range(n):
            data = files_for(st, i) if files_for else st["files"].format(i=i)
            args = {**(plan.get("args") or {}), **(st.get("args") or {})}
            runs.append({"phase": st["name"], "index": i, "of": n, "data": data, "args": args})
    return runs


def render_flags(args: dict) -> list:
    """OpenRLHF dotted flags from a mapping; true booleans become bare flags, false ones are left out."""
    out = []
    for k, v in args.items():
        if v is True:
            out.append(f"--{k}")
        elif v is False or v is None:
            continue
        else:
            out += [f"--{k}", str(v)]
    return out


def referenced_files(r: Recipe):
    """Repository files the recipe names (stage outputs under runs/ are checked by the stages)."""
    out = []
    cands = [
        ("sft", "deepspeed", r.files["sft"].get("deepspeed")),
        ("recipe", "base_config", r.files["recipe"].get("base_config")),
    ]
    for stem, key, val in cands:
        if val and not str(val).startswith("runs/") and not (ROOT / val).exists() and not Path(val).exists():
            out.append(r.problem(stem, key, f"file not found: {val}"))
    return out


def render_sft(r: Recipe, grad_accum: int | None = None) -> dict:
    """The axolotl config a stage runs: repository paths made absolute, grad accum derived for its layout (the
    stage paths are placeholders that scripts/lib/stages.fill replaces)."""
    cfg = copy.deepcopy(r.files["sft"])
    if cfg.get("deepspeed") and not Path(cfg["deepspeed"]).is_absolute():
        cfg["deepspeed"] = str(ROOT / cfg["deepspeed"])
    if grad_accum:
        cfg["gradient_accumulation_steps"] = grad_accum
    return cfg


def render_dpo_argv(run: dict, model: str, output_dir: str) -> list:
    return [
        "--model.model_name_or_path",
        str(model),
        "--data.dataset",
        str(run["data"]),
        "--ckpt.output_dir",
        str(output_dir),
        *render_flags(run["args"]),
    ]
