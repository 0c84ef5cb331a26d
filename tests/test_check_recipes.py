"""`make check-recipes`: the published recipes pass every tool's validator; each kind of mistake fails
naming the file, the line and the key; a port may deviate from the published values."""

import shutil
import subprocess
import sys

import pytest
from conftest import ROOT
from conftest import check_recipes as check

pytestmark = pytest.mark.chain


def test_published_recipes_are_valid_and_tabled():
    p = check()
    assert p.returncode == 0, p.stdout + p.stderr
    rows = {
        tuple(c.strip() for c in line.split("|"))[:2]: [c.strip() for c in line.split("|")]
        for line in p.stdout.splitlines()
        if line.startswith("aloe-beta-")
    }
    assert rows[("aloe-beta-8b", "sft")][2:] == ["meta-llama/Llama-3.1-8B", "32", "1", "4", "128", "2e-05", "4"]
    assert rows[("aloe-beta-70b", "sft")][3:7] == ["64", "1", "2", "128"]
    assert rows[("aloe-beta-8b", "dpo stage1")][3:] == ["16", "1", "8", "128", "2e-07", "1 x 5 chunks"]
    assert rows[("aloe-beta-70b", "dpo stage2")][3:8] == ["100", "1", "1", "100", "1e-07"]
    assert ("aloe-beta-8b", "merge") in rows
    assert "profile cpu-tiny applied to aloe-beta-8b" in p.stdout


W = "      weight: 0.5                                  # [C] equal say for the medical and the instruct delta\n"
# case: (file, text, replacement, key named, hint in the message, text on the line named: default the replacement)
BAD = {
    "axolotl key": ("sft.yaml", "learning_rate: 2.0e-5", "learnin_rate: 2.0e-5", "learnin_rate", "learning_rate"),
    "merge method": ("merge.yaml", "merge_method: dare_ties", "merge_method: dare_tie", "merge_method", "dare_ties"),
    "merge parameter": ("merge.yaml", "      density: 0.5", "      densitty: 0.5", "densitty", "density"),
    "flat openrlhf flag": (
        "dpo.yaml",
        "  data.max_len: 4096",
        "  pretrain: meta-llama/Llama-3.1-8B",
        "pretrain",
        "model.model_name_or_path",
    ),
    "value out of range": (
        "merge.yaml",
        "      density: 0.5",
        "      density: 1.5",
        "models.0.parameters.density",
        "out of range: must be > 0 and <= 1",
    ),
    "duplicate key": ("sft.yaml", "seed: 42", "seed: 42\nseed: 7", "seed", "written twice", "seed: 7"),
    "required merge parameter": (
        "merge.yaml",
        W,
        "",
        "models.0.parameters",
        "requires parameter 'weight'",
        "    parameters:",
    ),
    "unknown placeholder token": (
        "merge.yaml",
        '- model: "@sft.model"',
        '- model: "@sft.modle"',
        "models.0.model",
        "@sft.modle is no output of a stage; known: @sft.model, @sft.prepared",
    ),
    "changed published value": (
        "dpo.yaml",
        "  model.beta: 0.1",
        "  model.beta: 0.2",
        "args.model.beta",
        "differs from the published 0.1",
    ),
}


def planted(where, fname, old, new):
    copy = where / "aloe-beta-8b"
    shutil.copytree(ROOT / "recipes/aloe-beta-8b", copy)
    text = (copy / fname).read_text()
    assert old in text
    (copy / fname).write_text(text.replace(old, new, 1))
    return copy


@pytest.fixture(scope="module")
def mistakes(tmp_path_factory):
    """Every planted mistake in its own copy, all checked by one check-recipes run (the validators run once for
    all recipes): (its stderr, {case: (copy, line of the mistake)})."""
    where = {}
    for case, (fname, old, new, _, _, *at) in BAD.items():
        copy = planted(tmp_path_factory.mktemp(case.replace(" ", "-")), fname, old, new)
        text = (copy / fname).read_text()
        where[case] = copy, text[: text.index(at[0] if at else new)].count("\n") + 1
    args = [x for copy, _ in where.values() for x in ("--recipe", copy)]
    p = subprocess.run([sys.executable, "-m", "scripts.drivers.check_recipes", *map(str, args)], cwd=ROOT,
                       text=True, capture_output=True, timeout=900)  # fmt: skip
    assert p.returncode != 0
    return p.stderr, where


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_mistake_is_named_with_file_line_and_key(case, mistakes):
    stderr, where = mistakes
    fname, _, _, key, hint, *_ = BAD[case]
    copy, line = where[case]
    lines = [x for x in stderr.splitlines() if f"{copy / fname}:{line}: {key}:" in x]
    assert lines, stderr
    assert hint in lines[0]


def test_a_port_without_released_as_may_deviate_and_gets_the_table(tmp_path):
    copy = planted(tmp_path, "dpo.yaml", "  model.beta: 0.1", "  model.beta: 0.2")
    text = (copy / "recipe.yaml").read_text()
    (copy / "recipe.yaml").write_text("".join(x for x in text.splitlines(True) if not x.startswith("released_as:")))
    p = check(f"RECIPE={copy}")
    assert p.returncode == 0, p.stderr
    assert "1 deviation(s) from the published values (information" in p.stdout
    assert any("dpo.yaml:11 " in x and "args.model.beta" in x and "0.2" in x for x in p.stdout.splitlines()), p.stdout


def test_a_world_size_that_cannot_reach_the_total_batch_fails(tmp_path):
    p = check(f"RECIPE={ROOT / 'recipes/aloe-beta-70b'}", "WORLD_SIZE=8")
    assert p.returncode != 0
    assert "dpo.yaml" in p.stderr and "train.batch_size" in p.stderr and "100" in p.stderr and "8 GPUs" in p.stderr
