"""The manifest: the one contract between stages (`<run>/<stage>/manifest.json`).

Its schema is the `Manifest` TypedDict below, one comment per key (as lm-eval's result_schema.py documents
its results); `read_done` checks the schema version and every required key when a stage reads it.
"""

import ast
import datetime as dt
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import TypedDict

from scripts.core import ROOT, AloeError, git_sha, read_json, sha256_json, sha256_path, write_json_atomic

from . import launch, stages, venv

SCHEMA = "aloe-repro/manifest@2"  # @2: environment and code joined a stage's identity


class Manifest(TypedDict):
    schema: str  # SCHEMA
    stage: str  # its entry in scripts/lib/stages.py: tiny-kit, data, sft, merge, dpo-run (one OpenRLHF run), dpo, eval, ...
    status: str  # running | done | failed; only `done` manifests are read by the next stage
    key: str  # sha256 over recipe, inputs, numbers, environment and code: same key, done -> skipped
    recipe: dict  # {path, profile, sha256, rendered}: the exact configuration the tool ran
    inputs: dict  # {name: {path, sha256}}: files by content; stage outputs by their manifest's hash
    environment: dict  # {env: stamp}: the lock (and install plan) hash of the environment it ran in
    code: dict  # {sha256, files}: its script, the scripts/lib helpers it imported, tools, packages
    outputs: (
        dict  # {key: {path, sha256}}: what it produced, keys as stages.py declares (directories hashed file by file)
    )
    tools: dict  # {package: version} read from the stage environment
    launcher: dict  # {kind: slurm, job_id, job_name, nodes, node_list} or {kind: local, host}
    git_sha: str  # the repository commit ("-dirty" when the tree had changes)
    started: str  # ISO time
    finished: str | None  # ISO time
    wall_s: float | None  # seconds
    metrics: dict  # stage figures for the summary (loss first/last, reward margin, accuracy, ...)
    # optional: seed, world_size, micro_batch, grad_accum, total_batch (the numbers that decide the optimisation);
    # runs (dpo: one entry per OpenRLHF run, in order: {stage, index, data, model_in, output, wall_s});
    # attempts (a resumable stage resumed: the earlier attempts, {started, status, wall_s, world_size, micro_batch,
    # grad_accum}; a killed one's wall time runs to its last write); resume_key (a stage that may change its layout:
    # the key without world size, micro batch and accumulation)


class ManifestError(AloeError):
    pass


def validate(m: dict, path: Path) -> dict:
    """The manifest if it has this schema version and every key; else an error naming the file and keys."""
    if m.get("schema") != SCHEMA:
        raise ManifestError(f"{path}: schema {m.get('schema')!r}, this code reads {SCHEMA!r}: rerun that stage")
    missing = [k for k in Manifest.__annotations__ if k not in m]
    if missing:
        raise ManifestError(f"{path}: missing key(s) {', '.join(missing)}: rerun that stage")
    return m


OURS = ("scripts", "data_prep", "medprompt", "evals")  # the packages whose code is part of a stage's identity


def imported_files(module: str) -> set:
    """The files of `module` and of every module of ours it imports, transitively, read from the source (ast): the
    same set whoever asks (the stage itself, or a chain asking whether it is done), lazy imports included."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if path is None or path in seen:
            continue
        seen.add(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(
                        [*package.split(".")[: len(package.split(".")) - node.level + 1], *filter(None, [base])]
                    )
                todo += [base, *(f"{base}.{a.name}" for a in node.names)]  # `from pkg import module` or a name
    return seen


def _module_file(name: str) -> Path | None:
    if name.split(".")[0] not in OURS:
        return None
    base = ROOT.joinpath(*name.split("."))
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


def code_identity(module: str, extra=()) -> dict:
    """{sha256, files}: the stage's module and what of ours it imports, and extra files or packages (their
    .py/.yaml: the tools and libraries it runs in its environment)."""
    files = imported_files(module)
    for e in map(Path, extra):
        files |= {f for f in e.rglob("*") if f.suffix in (".py", ".yaml")} if e.is_dir() else {e.resolve()}
    names = sorted(str(f.relative_to(ROOT) if f.is_relative_to(ROOT) else f) for f in files)
    return {"sha256": sha256_json([[f, sha256_path(ROOT / f)] for f in names]), "files": names}


HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+")  # owner/name: no ',' or '=' (lm-eval's model_args)


def model_input(ref: str) -> dict:
    """A model input: a local directory (hashed), or a hub id owner/name (recorded as is); else an error naming it."""
    p = Path(ref)
    if "," in ref or "=" in ref:  # it would become more than a model in a tool's key=value list (lm-eval model_args)
        raise AloeError(f"model {ref!r}: a model path or id has no ',' or '='")
    if p.is_dir():
        for f in sorted(p.glob("*.safetensors")):
            complete_safetensors(f)
        return {"path": ref, "sha256": sha256_path(p)}
    if HUB_ID.fullmatch(ref) and ".." not in ref:
        return {"path": ref, "sha256": None}
    raise AloeError(f"model {ref!r}: neither a local model folder nor a hub id of the form owner/name")


def complete_safetensors(f: Path):
    """A .safetensors file holds its whole header and every tensor it declares; a cut copy is named before any tool
    tries to load it."""
    with open(f, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        try:
            header = json.loads(fh.read(n)) if 0 < n < 1 << 27 else None
        except ValueError:
            header = None
    ends = [v["data_offsets"][1] for k, v in (header or {}).items() if k != "__metadata__"]
    if header is None or f.stat().st_size < 8 + n + max(ends, default=0):
        raise AloeError("a cut or damaged safetensors file: it holds less than its header declares", file=f)


def verified(output: dict, manifest) -> dict:
    """An output handed downstream (or to verify), if its content still has the hash its manifest recorded; else an
    error naming both (a file edited or truncated since, a model folder changed)."""
    path = Path(output["path"])
    if not path.exists() or sha256_path(path) != output["sha256"]:
        state = "is missing" if not path.exists() else "changed since its stage recorded it (sha256 differs)"
        raise AloeError(f"{path} {state}: rerun that stage, or restore it", file=manifest)
    return output


def results(folder, what: str) -> Path:
    """The results a finished evaluation stage recorded (its registry entry's `results` output), checked by hash."""
    m = read_done(folder, what)
    return Path(verified(m["outputs"][stages.spec(m["stage"]).results], Path(folder) / "manifest.json")["path"])


def refuse_remote_code(model: str, allowed: list, tool: str):
    """A tool that runs a model's own code unasked (OpenRLHF loads with trust_remote_code on) gets a local model
    folder with custom code (config.json `auto_map`) only when recipe.yaml `trust_remote_code` names it."""
    config = Path(model) / "config.json"
    if config.is_file() and read_json(config).get("auto_map") and model not in allowed:
        raise AloeError(
            f"{tool} would run this model's own code (config.json auto_map), which recipe.yaml trust_remote_code does "
            "not allow: name the model there to allow it",
            file=config,
        )


def read(stage_dir: Path) -> dict | None:
    """A stage folder's manifest, None without one; one that is not valid JSON is an error naming it."""
    f = Path(stage_dir) / "manifest.json"
    return read_json(f) if f.exists() else None


def read_done(stage_dir: Path, what: str) -> dict:
    """The manifest of a finished upstream stage, checked against the schema, or a clear error naming what to run."""
    m = read(stage_dir)
    path = Path(stage_dir) / "manifest.json"
    if not m or m.get("status") != "done":
        state = "missing" if not m else m.get("status")
        raise ManifestError(f"{what}: upstream manifest {path} is {state}; run that stage first")
    return validate(m, path)


def now():
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Build:
    """One build of a stage: skipped when done with the same key, else produced under .partial/ and recorded.
    The lifecycle only: the stage driver (scripts/lib/driver.py) decides what goes in and what a stage runs.

    b = Build(folder, "sft", recipe_info, inputs, force, env="sft", code=[tool])  # resumable: keeps what it wrote
    if b.skip():             # done with the same key: says so and returns True
        return
    with b:                  # a clean .partial/, manifest "running" -> "done" | "failed"
        ... produce into b.partial ...; b.publish("model", b.partial / "model")
    """

    def __init__(
        self,
        folder: Path,
        stage: str,
        recipe: dict,
        inputs: dict,
        force=False,
        resumable=False,
        *,
        env: str,
        code=(),
        relayout=False,
        **numbers,
    ):
        """`relayout`: the stage can take what another layout of the same total batch made (DPO's runs through
        DeepSpeed's universal checkpoint): a finished build on another layout is kept, an unfinished one resumed."""
        self.dir, self.stage, self.resumable = Path(folder), stage, resumable
        environment, code = {env: venv.stamp(env)}, code_identity(stages.spec(stage).module, code)
        identity = {
            "recipe": recipe.get("sha256"),
            "inputs": inputs,
            "environment": environment,
            "code": code["sha256"],
        }
        self.key = sha256_json({**identity, "numbers": numbers})
        free = {k: v for k, v in numbers.items() if k not in LAYOUT}
        self.resume_key = sha256_json({**identity, "numbers": free}) if relayout else None
        self.m = {
            "schema": SCHEMA,
            "stage": stage,
            "status": "running",
            "key": self.key,
            "recipe": recipe,
            "inputs": inputs,
            "environment": environment,
            "code": code,
            "outputs": {},
            "tools": {},
            **numbers,
            "launcher": launch.where(),
            "git_sha": git_sha(),
            "started": now(),
            "finished": None,
            "wall_s": None,
            "metrics": {},
            **({"resume_key": self.resume_key} if relayout else {}),
        }
        old = read(self.dir)
        self.done = (
            old is not None
            and old.get("status") == "done"
            and self.same(old)
            and all(Path(o["path"]).exists() for o in old.get("outputs", {}).values())
        )
        self.skipped, self.force = self.done and not force, force
        self.previous = old
        self.partial = self.dir / ".partial"

    def same(self, other: dict) -> bool:
        """Made with this identity: the same key, or for a relayout stage the same but for the layout."""
        return other.get("key") == self.key or (
            self.resume_key is not None and other.get("resume_key") == self.resume_key
        )

    def skip(self) -> bool:
        if self.skipped:
            how = "" if self.previous["key"] == self.key else f", on another layout ({layout(self.previous)})"
            print(
                f"[{self.stage}] skipped: finished with the same inputs{how} ({self.dir / 'manifest.json'})", flush=True
            )
            self.m = self.previous
        return self.skipped

    def __enter__(self):
        """Build beside the finished outputs: in .partial/, with the attempt's record there; manifest.json and the
        outputs it names stay as they are until the build succeeds (a refused or failed rerun leaves them intact).
        A resumable stage's unfinished attempt with the same key is resumed from what it wrote."""
        attempt = read(self.partial)
        if self.resumable and not self.force and attempt is not None and self.same(attempt):
            how = (
                ""
                if attempt["key"] == self.key
                else f", made on another layout ({layout(attempt)} -> {layout(self.m)})"
            )
            print(f"[{self.stage}] resuming the unfinished attempt ({attempt.get('status')}) from what it wrote{how}")
            self.m["attempts"] = [*attempt.get("attempts", []), _ended(attempt, self.partial)]
        else:
            why = (
                f"previous attempt {attempt.get('status')}" if attempt
                else "first build" if self.previous is None
                else "forced" if self.previous.get("key") == self.key
                else "inputs changed"
            )  # fmt: skip
            kept = "; the finished outputs stay until it succeeds" if self.previous else ""
            print(f"[{self.stage}] building ({why}){kept}", flush=True)
            shutil.rmtree(self.partial, ignore_errors=True)
        self.partial.mkdir(parents=True, exist_ok=True)
        self.t0 = time.time()
        self.save()
        return self

    def publish(self, name: str, produced: Path, dest: str | None = None) -> Path:
        """Move a finished output out of .partial into place, replacing the previous build's, and hash it."""
        target = self.dir / (dest or name)
        if Path(produced) != target:
            target.parent.mkdir(parents=True, exist_ok=True)
            _remove(target)
            os.replace(produced, target)
        self.m["outputs"][name] = {"path": str(target), "sha256": sha256_path(target)}
        return target

    def save(self):
        """The attempt's record (status running, or failed), beside what it builds: manifest.json only ever holds
        a finished build."""
        write_json_atomic(self.partial / "manifest.json", self.m)

    def __exit__(self, exc_type, exc, tb):
        self.m["finished"] = now()
        self.m["wall_s"] = round(time.time() - self.t0, 1)
        self.m["status"] = "failed" if exc_type else "done"
        if exc_type:
            self.save()
            return False
        kept = {o["path"] for o in self.m["outputs"].values()}
        stale = [] if self.resumable else (self.previous or {}).get("outputs", {}).values()  # (dpo: its runs' own)
        for old in stale:  # outputs of the last build that this one no longer makes
            if old["path"] not in kept and Path(old["path"]).resolve().is_relative_to(self.dir.resolve()):
                _remove(Path(old["path"]))
        write_json_atomic(self.dir / "manifest.json", self.m)
        shutil.rmtree(self.partial, ignore_errors=True)
        return False


def _ended(attempt: dict, partial: Path) -> dict:
    """An earlier attempt as it ended: {started, status, wall_s}; a killed one's wall time runs to its last write."""
    if attempt.get("wall_s") is None:
        last = max((f.stat().st_mtime for f in partial.rglob("*") if f.is_file()), default=None)
        started = dt.datetime.fromisoformat(attempt["started"]).timestamp()
        attempt = {**attempt, "wall_s": round(last - started, 1) if last else None}
    return {k: attempt.get(k) for k in ("started", "status", "wall_s")} | {
        k: attempt[k] for k in LAYOUT if k in attempt
    }


LAYOUT = ("world_size", "micro_batch", "grad_accum")  # how a total batch is laid out over the ranks


def layout(m: dict) -> str:
    """micro x accum x ranks, as the plan tables show a batch."""
    return f"{m.get('micro_batch')} x {m.get('grad_accum')} x {m.get('world_size')}"


def _remove(path: Path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
