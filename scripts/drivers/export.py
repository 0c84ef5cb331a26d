"""make export: the release folder of a recipe run's final model, runs/<run>/release/, ready to upload to the hub.

It holds every file of the final model (hard links: no second copy on disk; a copy where the filesystem refuses a
link), the model card README.md (bases and merge partner, the recipe's values with their [P]/[D]/[C] tags, the data
and its hashes, every stage's environment lock, the verify tables) and the hub's evaluation metadata of every
measured column (the card's model-index, and .eval_results/ for columns measured on a benchmark's whole hub
dataset), built in release.partial/, read back with huggingface_hub's own parsers (offline), then renamed into place.
The final model's folder is a hashed stage output: nothing is written into it. release.json records the manifest key
and model hash the release was built from; an export of an unchanged run keeps the release, a new final model, verify
table or recipe note rebuilds it, and a final model changed without its stage rerunning is refused.

  python -m scripts.drivers.export --run runs/aloe-beta-8b-cpu-tiny
  hf upload <namespace>/<name> runs/aloe-beta-8b-cpu-tiny/release . --exclude release.json   # yours to run
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

from scripts import core, verify
from scripts.lib import cli, stages
from scripts.lib import manifest as mf
from scripts.lib import model_card as mc

SCHEMA = "aloe-repro/release@1"
REPLACED = ("README.md", ".eval_results", "release.json")  # the release's own: a model file of these names stays out


def model_files(model: Path) -> list:
    """The final model's files (relative names), but those the release writes itself."""
    return sorted(
        str(f.relative_to(model))
        for f in model.rglob("*")
        if f.is_file() and f.relative_to(model).parts[0] not in REPLACED
    )


def current(release: Path, model: Path, want: dict) -> bool:
    """Whether the release was built from this manifest, model and card, and still holds the model's files (the same
    inodes where it linked them)."""
    try:
        old = core.read_json(release / "release.json")
    except core.AloeError:
        return False
    if any(old.get(k) != v for k, v in want.items()) or sorted(old.get("files") or {}) != model_files(model):
        return False
    for name, linked in old["files"].items():
        a, b = release / name, model / name
        if not a.is_file() or a.stat().st_size != b.stat().st_size or (linked and not os.path.samefile(a, b)):
            return False
    return True


def link(src: Path, dst: Path) -> bool:
    """Hard-link src at dst (True), or copy it where the filesystem refuses a link (False)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
        return True
    except OSError:
        shutil.copy2(src, dst)
        return False


def export(run, reported: Path = verify.REPORTED, force=False) -> tuple[Path, bool]:
    """(the release folder, whether it was (re)built) of the recipe run `run` (runs/<run>)."""
    card = mc.build(run, reported)
    run, model = card.run, Path(card.model["path"])
    release = run / mc.RELEASE
    want = {"schema": SCHEMA, "manifest": card.manifest, "model": card.model,
            "card": core.sha256_json([card.readme, card.eval_results])}  # fmt: skip
    with core.locked(run / f".{mc.RELEASE}.lock", f"[export] waiting for another export of {run}"):
        if not force and current(release, model, want):
            return release, False
        mf.verified(card.model, card.manifest["path"])  # the files still have the hash their stage recorded
        partial, old = run / f"{mc.RELEASE}.partial", run / f"{mc.RELEASE}.old"
        for d in (partial, old):
            shutil.rmtree(d, ignore_errors=True)
        partial.mkdir()
        files = {name: link(model / name, partial / name) for name in model_files(model)}
        (partial / "README.md").write_text(card.readme)
        if card.eval_results:
            (partial / mc.EVAL_RESULTS).parent.mkdir(parents=True)
            (partial / mc.EVAL_RESULTS).write_text(card.eval_results)
        mc.validate(partial, card)
        core.write_json_atomic(partial / "release.json", {**want, "files": files, "built": mf.now()})
        if release.exists():
            os.replace(release, old)
        os.replace(partial, release)
        shutil.rmtree(old, ignore_errors=True)
    return release, True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="the recipe run's folder, runs/<recipe>[-<profile>]")
    ap.add_argument("--runs", default=str(core.ROOT / "runs"), help="the runs root the run must lie in (default runs/)")
    ap.add_argument(
        "--reported",
        default=str(verify.REPORTED),
        help="the reported numbers of the verify tables, where the run's verify plan names none "
        "(default results/reported.yaml)",
    )
    ap.add_argument("--force", action="store_true", help="rebuild the release even if it is up to date")
    a = ap.parse_args(argv)
    release, built = export(stages.inside(a.runs, Path(a.run)), Path(a.reported), a.force)  # it writes <run>/release
    card = core.read_json(release / "release.json")
    state = "written" if built else "up to date (the same final model, manifest and card)"
    print(f"[export] {release}: {state}\n  model card {release / 'README.md'}\n  final model {card['model']['path']} "
          f"(sha256 {card['model']['sha256']}, {len(card['files'])} files, "
          f"{sum(card['files'].values())} hard-linked)")  # fmt: skip
    if (release / mc.EVAL_RESULTS).is_file():
        print(f"  hub evaluation results {release / mc.EVAL_RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.edge(main))
