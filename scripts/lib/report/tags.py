"""The provenance tags of recipe values: `# [P] ...` published, `# [D] ...` derived, `# [C] ...` a recipe choice,
written beside each value in recipes/<recipe>/*.yaml; and which values a profile (recipes/profiles/) overrides."""

from pathlib import Path

import yaml

from scripts import core
from scripts.lib import recipe_tags
from scripts.lib.values import flatten


def file_tags(path: Path) -> dict:
    """{dotted key: (tag, note)} of a recipe YAML file ({} when it is gone or not YAML)."""
    try:
        return recipe_tags.comments(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return {}


def profile_keys(profile: str | None, stem: str) -> set:
    """The dotted keys the profile sets in the recipe file `stem` (sft, dpo, ...)."""
    f = core.ROOT / "recipes" / "profiles" / f"{profile}.yaml"
    try:
        over = (yaml.safe_load(f.read_text()) or {}).get(stem) if profile else None
    except (OSError, yaml.YAMLError):
        return set()
    return set(flatten(over)) if isinstance(over, dict) else set()


def tagged(recipe: dict) -> list:
    """[(dotted key, value, tag, note, set by the profile)] of a manifest's `recipe` entry (its rendered values), each
    value with the tag of its own comment (a list item without one takes its list's: recipe_tags.comments)."""
    rendered = recipe.get("rendered")
    if not isinstance(rendered, dict):
        return []
    path = Path(recipe.get("path") or "")
    tags = file_tags(core.ROOT / path) if path.suffix == ".yaml" else {}
    own = profile_keys(recipe.get("profile"), path.stem)
    rows = []
    for key, value in flatten(rendered).items():
        tag, note = tags.get(key, (None, None))
        rows.append((key, value, tag, note or None, key in own))
    return rows
