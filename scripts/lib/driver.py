"""The one stage driver: everything a stage does that is not its own, in one place and in this order.

parse (the shared options, then the stage's own) -> load the plan (or render the recipe) -> the stage prepares:
its inputs (upstream outputs from done manifests), settings, numbers and environment, without side effects ->
the identity (manifest.Build's key) -> skip when done -> the stage's checks (its tool's validators) -> build:
the stage runs its tool into .partial/ -> publish every declared output atomically and hash it -> tool versions
and metrics into the manifest. A stage (scripts/<stage>.py) is a `Stage` subclass supplying only its own part:
`options`, `prepare`, `check`, `run` (returning its metrics), `summary`. "Is it done?" is `is_done`, a function call
on the registry and the manifests (no stage process is started).
"""

import argparse
import importlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from scripts import core
from scripts.core import AloeError, sha256_json

from . import cli, stages, venv
from . import manifest as mf
from . import recipe as rc

LOCK = ".lock"  # in the stage folder: held while a process checks, builds or skips it
COMMON = ("recipe", "profile", "world_size", "runs", "force", "plan")  # cli.stage_parser's options


@dataclass(frozen=True)
class Context:
    """What a stage's own code is given: the recipe as planned, the runs root, and its own options by name."""

    recipe: rc.Recipe
    runs: Path
    force: bool
    opts: dict  # the stage's own options (its `options`), parsed


@dataclass
class Prepared:
    """A stage's prepared run: everything its identity is made of, and what it needs to run."""

    folder: Path  # its stage folder (scripts/lib/stages.py)
    recipe: dict  # {path, profile, sha256, rendered}: the exact configuration its tool runs
    inputs: dict  # {name: {path, sha256}}
    env: str  # the environment it runs in (.venv/<env>)
    code: tuple = ()  # files or packages besides its module's imports: the tools it runs in that environment
    numbers: dict = field(default_factory=dict)  # seed, world_size, micro_batch, grad_accum, total_batch
    tools: tuple = ()  # packages whose versions the manifest records
    resumable: bool = False  # an unfinished attempt with the same settings resumes from what it wrote in .partial/
    own: dict = field(default_factory=dict)  # the stage's own prepared values (its rendered config, model, ...)


class Stage:
    """A pipeline stage's own part; the driver does the rest. `name` is its entry in scripts/lib/stages.py."""

    name = ""

    def options(self, ap: argparse.ArgumentParser):
        """Its own command-line options."""

    def prepare(self, ctx: Context) -> Prepared:
        raise NotImplementedError

    def check(self, ctx: Context, p: Prepared):
        """Checks that cost a tool start (its validator): only when the stage is about to run."""

    def run(self, ctx: Context, p: Prepared, b: mf.Build) -> dict:
        """Produce the outputs (into b.partial, or in place when resumable); return the metrics."""
        raise NotImplementedError

    def part(self, ctx: Context, p: Prepared) -> str | None:
        """Run only a part of the stage, without a manifest of its own (dpo --upto N): a message when it did."""
        return None

    def summary(self, ctx: Context, p: Prepared, m: dict) -> str:
        """The line printed when it is done (m: its manifest)."""
        return str(p.folder)

    def figure(self, m: dict) -> str:
        """What shows, in the smoke summary, that a finished run worked (m: its manifest)."""
        return ""

    def build(self, ctx: Context, p: Prepared) -> mf.Build:
        return mf.Build(
            p.folder, self.name, p.recipe, p.inputs, ctx.force, p.resumable, env=p.env, code=p.code, **p.numbers
        )

    def is_done(self, ctx: Context, p: Prepared) -> bool:
        return self.build(ctx, p).done


def recipe_info(r: rc.Recipe, stem: str, rendered) -> dict:
    """The manifest's `recipe`: the file a stage's configuration comes from and the configuration as rendered."""
    return {"path": r.rel(stem), "profile": r.profile, "sha256": sha256_json(rendered), "rendered": rendered}


def inputs(stage: str, runs, run: str, *names: str, **fmt) -> dict:
    """The upstream outputs `stage` reads (its `reads`, or only `names` of them), from done manifests, each checked
    against its recorded hash (trusted by hash, not by name)."""
    out, manifests = {}, {}
    for name in names or stages.SPECS[stage].reads:
        up, key = stages.SPECS[stage].reads[name]
        if up not in manifests:  # one read per upstream stage (medprompt takes two outputs of data)
            manifests[up] = mf.read_done(stages.folder(up, runs, run, **fmt), stage)
        where = stages.folder(up, runs, run, **fmt) / "manifest.json"
        found = {k: mf.verified(o, where) for k, o in stages.matching(manifests[up]["outputs"], key).items()}
        if not found and key not in stages.SPECS[up].optional:
            raise AloeError(f"{stage}: no output {key!r}", file=where)
        out[name] = found if "{" in key else found.get(key, {})
    return out


def publish_all(b: mf.Build):
    """Publish every declared output of b's stage: from b.partial (moved into place) or, for a stage that writes
    in place and resumes (medprompt, the judged evals), where it already lies; a missing required output fails."""
    sp = stages.SPECS[b.stage]
    for key, dest in sp.outputs.items():
        if dest is None:
            continue
        if "{" in key:  # one output per file matching the template
            pat = stages._pattern(dest)
            for base in (b.partial, b.dir):
                found = [
                    f for f in sorted(base.rglob("*")) if f.is_file() and pat.match(f.relative_to(base).as_posix())
                ]
                for f in found:
                    rel = f.relative_to(base).as_posix()
                    b.publish(key.format(**pat.match(rel).groupdict()), f, rel)
                if found:
                    break
            if key not in sp.optional and not stages.matching(b.m["outputs"], key):
                raise AloeError(f"[{b.stage}] finished without any output {key!r} ({dest})")
        elif (b.partial / dest).exists() or (b.dir / dest).exists():
            b.publish(key, b.partial / dest if (b.partial / dest).exists() else b.dir / dest, dest)
        elif key not in sp.optional:
            raise AloeError(f"[{b.stage}] finished without its output {key!r} ({dest})")


def _parse(stage: Stage, argv):
    ap = cli.stage_parser(sys.modules[type(stage).__module__].__doc__)
    stage.options(ap)
    a = ap.parse_args(argv)
    r, runs = cli.load(a.recipe, a.profile, a.world_size, a.runs, a.plan)  # with --plan, the runs root is the plan's
    return Context(r, runs, a.force, {k: v for k, v in vars(a).items() if k not in COMMON})


def main(stage: Stage, argv=None) -> int:
    """A stage's command line: the whole sequence; an AloeError becomes a message and exit status 1."""
    try:
        ctx = _parse(stage, argv)
        p = stage.prepare(ctx)
        if (message := stage.part(ctx, p)) is not None:
            print(f"[{stage.name}] {message}", flush=True)
            return 0
        # one build of a stage folder at a time: a second process waits, then finds it done and skips
        with core.locked(p.folder / LOCK, f"[{stage.name}] waiting: another process is building {p.folder}"):
            b = stage.build(ctx, p)
            if b.skip():
                return 0
            stage.check(ctx, p)
            with b:
                metrics = stage.run(ctx, p, b)
                publish_all(b)
                b.m["tools"] = venv.tool_versions(p.env, list(p.tools)) if p.tools else {}
                b.m["metrics"] = metrics
        print(f"[{stage.name}] done: {stage.summary(ctx, p, b.m)}", flush=True)
        return 0
    except AloeError as e:
        print(f"[{stage.name}] {e}", file=sys.stderr)
        return 1


def stage_of(name: str) -> Stage:
    """The Stage object of a registry entry (its module's STAGE)."""
    return importlib.import_module(stages.spec(name).module).STAGE


def prepared(name: str, argv: list) -> Prepared:
    """A stage prepared with these arguments (a job's `--plan ... args`) as its job will prepare it: every input read
    and checked against its recorded hash; its errors raised (the preflight job)."""
    stage = stage_of(name)
    return stage.prepare(_parse(stage, argv))


def is_done(name: str, argv: list, cuda: bool | None = None) -> bool:
    """Would this stage, given these arguments (a job's `--plan ... args`), skip: finished with the same identity?
    Asked in this process, as on the node it runs on (`cuda`: the vLLM stages' environment depends on it). A stage
    that cannot even prepare (an upstream stage not done) is not done."""
    saved = os.environ.get(venv.CUDA)
    if cuda is not None:
        os.environ[venv.CUDA] = "1" if cuda else "0"
    try:
        stage = stage_of(name)
        ctx = _parse(stage, argv)
        return stage.is_done(ctx, stage.prepare(ctx))
    except (AloeError, SystemExit):
        return False
    finally:
        if saved is None:
            os.environ.pop(venv.CUDA, None)
        else:
            os.environ[venv.CUDA] = saved
