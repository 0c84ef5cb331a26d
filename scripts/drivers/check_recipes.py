"""Validate recipes offline before any compute is spent; print the batch table.

Each tool validates its own file (axolotl's config validation as on a GPU node, with the base model's
public config.json supplied offline; mergekit's MergeConfiguration and merge-method parameters;
OpenRLHF's own argument parser on the rendered command lines). On top, what the tools accept silently:
unknown keys, duplicate keys, values out of range, a merge without a parameter its method requires, micro
batch x grad accum x world size = the recipe's total batch, the referenced files, the stage placeholders, and for a recipe that
states `released_as`, every value that differs from the published one (recipes/published.yaml; a recipe
without it gets the table of deviations as information). Exits 1 naming file, line and key for every problem.

  python -m scripts.drivers.check_recipes                              # every recipe under recipes/
  python -m scripts.drivers.check_recipes --recipe recipes/aloe-beta-8b --world-size 8
"""

import argparse
import sys

from scripts import core
from scripts.core import table
from scripts.lib import checks, cli, placeholders, values, yamlfiles
from scripts.lib import recipe as rc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", action="append", help="recipe folder (repeatable; default: all)")
    ap.add_argument(
        "--world-size",
        type=cli.positive,
        help="GPUs to check the batch arithmetic for (default: the recipe's published hardware)",
    )
    ap.add_argument("--profile", help="also show what this profile changes (default: cpu-tiny)", default="cpu-tiny")
    a = ap.parse_args(argv)
    dirs = a.recipe or sorted(str(p.parent) for p in (core.ROOT / "recipes").glob("*/recipe.yaml"))
    recipes, problems = [], []
    for d in dirs:
        try:
            recipes.append(rc.load(d, world_size=a.world_size))
        except yamlfiles.RecipeError as e:
            problems += e.problems
    if recipes:
        p, rows = checks.validate(recipes)
        problems += p
        print(table(checks.HEADERS, rows))
    for r in recipes:  # the placeholders each stage fills (scripts/lib/stages.py)
        problems += placeholders.placeholder_problems(r)
    for r in recipes:  # the published values (recipes/published.yaml): binding for a released model only
        published, released = values.published_for(r)
        devs = values.deviations(r, published)
        if devs:
            kind = "problems" if released else "information: no released_as, so deviations are allowed"
            print(f"\n{r.name}: {len(devs)} deviation(s) from the published values ({kind})")
            print(
                table(
                    ["file", "key", "published", "recipe"],
                    [(f"{r.rel(s)}:{yamlfiles.locate(r.file(s), k) or '-'}", k, p, v) for s, k, p, v in devs],
                )
            )
        if released:
            problems += [
                r.problem(
                    s,
                    k,
                    f"{v} differs from the published {p} ({r.raw['recipe']['released_as']}, recipes/published.yaml)",
                )
                for s, k, p, v in devs
            ]
    if a.profile and recipes:
        r = next((x for x in recipes if x.path.name == "aloe-beta-8b"), recipes[0])  # the one make smoke runs
        prof = rc.load(r.path, profile=a.profile)
        changes = [
            (f"{stem}.yaml", k, before, after)
            for stem in rc.FILES
            for k, before, after in yamlfiles.diff(r.files[stem], prof.files[stem])
        ]
        print(
            f"\nprofile {a.profile} applied to {r.path.name}: {len(changes)} changes "
            f"(model paths, sizes, batch, steps, CPU-only settings)"
        )
        print(table(["file", "key", "recipe", f"with {a.profile}"], changes))
    if problems:
        print(f"\n{len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print(f"\nall {len(recipes)} recipe(s) valid")
    return 0


if __name__ == "__main__":
    sys.exit(cli.edge(main))
