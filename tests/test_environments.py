"""Exact environments: each lock satisfies its request, every built environment equals its lock package for
package, a wrong hash or an extra package is refused by name, `make lock` is stable and moves only what a
changed pin moves, and a stage's identity includes its environment and its code."""

import re
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

from scripts import core
from scripts.drivers import install, lock
from scripts.lib import manifest as mf
from scripts.lib import recipe as rc
from scripts.lib import uv, venv

ENVS = ROOT / "envs"


def sh(*args, **kw):
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True, **kw)


@pytest.mark.parametrize("stage", list(lock.VARIANTS))
@pytest.mark.unit
def test_every_lock_pins_what_its_request_asks_for(stage):
    wanted = dict(re.findall(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==(\S+)", (ENVS / f"{stage}.in").read_text(), re.M))
    for variant in lock.VARIANTS[stage]:
        got = install.entries(lock.lock_path(stage, variant))
        for name, version in wanted.items():
            pinned = got[install.norm(name)][0].split("==")[1]
            assert pinned.split("+")[0] == version, (stage, variant, name, pinned)
        torch = got.get("torch", ("torch==-",))[0]
        assert (variant == "cpu") == torch.endswith("+cpu") or "torch" not in got, (stage, variant, torch)
        text = lock.lock_path(stage, variant).read_text()
        assert "/etc/" not in text and "/opt/" not in text and "file://" not in text  # no machine paths
        assert all(len(b) > 1 for _, b in got.values())  # every package carries its hashes


@pytest.mark.unit
def test_built_environments_equal_their_locks():
    p = sh("-m", "scripts.drivers.install", "--check")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("matches") == len(install.STAGES)


@pytest.fixture()
def data_env(tmp_path):
    """A copy of envs/ and a fresh .venv/data built from it in tmp_path (uv's cache makes it seconds)."""
    envs = tmp_path / "envs"
    shutil.copytree(ENVS, envs)
    return envs, tmp_path / "venvs"


@pytest.mark.unit
def test_an_extra_package_is_refused_by_name(data_env):
    envs, venvs = data_env
    assert sh("-m", "scripts.drivers.install", "data", "--envs", envs, "--venvs", venvs).returncode == 0
    extra = uv.run(
        ["pip", "install", "--python", venvs / "data" / "bin" / "python", "--no-deps", "iniconfig", *uv.sources()],
        capture_output=True,
        text=True,
    )
    assert extra.returncode == 0, extra.stderr
    p = sh("-m", "scripts.drivers.install", "data", "--envs", envs, "--venvs", venvs)
    assert p.returncode != 0 and "not in the lock: iniconfig==" in p.stderr


@pytest.mark.unit
def test_a_wrong_hash_fails_naming_the_package(data_env):
    envs, venvs = data_env
    text = (envs / "data.lock").read_text()
    block = re.search(r"^pyyaml==\S+ \\\n((?:    --hash=sha256:[0-9a-f]+(?: \\)?\n)+)", text, re.M)
    (envs / "data.lock").write_text(text.replace(block.group(1), "    --hash=sha256:" + "0" * 64 + "\n"))
    p = sh("-m", "scripts.drivers.install", "data", "--envs", envs, "--venvs", venvs)
    assert p.returncode != 0 and "pyyaml" in p.stderr.lower() and "hash" in p.stderr.lower(), p.stderr[-2000:]


@pytest.mark.chain
def test_lock_is_stable_and_one_changed_pin_changes_that_lock_only(data_env):
    envs, _ = data_env
    before = {f.name: f.read_text() for f in envs.glob("*.lock")}
    p = sh("-m", "scripts.drivers.lock", "data", "base", "--envs", envs)
    assert p.returncode == 0, p.stderr
    assert {f.name: f.read_text() for f in envs.glob("*.lock")} == before  # nothing changed, nothing moved
    (envs / "data.in").write_text((envs / "data.in").read_text().replace("pyyaml==6.0.3", "pyyaml==6.0.2"))
    p = sh("-m", "scripts.drivers.lock", "data", "base", "--envs", envs)
    assert p.returncode == 0, p.stderr
    after = {f.name: f.read_text() for f in envs.glob("*.lock")}
    assert [n for n in after if after[n] != before[n]] == ["data.lock"]
    new = {k: v[0] for k, v in install.entries(envs / "data.lock").items()}
    assert new["pyyaml"] == "pyyaml==6.0.2"
    was = {k: v[0] for k, v in install.entries(ENVS / "data.lock").items()}
    assert {k for k in new if new[k] != was.get(k)} == {"pyyaml"}


@pytest.mark.unit
def test_a_stage_reruns_when_its_environment_or_code_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(venv, "VENVS", tmp_path / "venvs")
    (tmp_path / "venvs" / "data").mkdir(parents=True)
    stamp = tmp_path / "venvs" / "data" / venv.STAMP
    stamp.write_text("lock-a\n")
    tool = tmp_path / "tool.py"
    tool.write_text("x = 1\n")
    recipe = {"sha256": core.sha256_json({"lr": 1e-5}), "rendered": {"lr": 1e-5}}

    def run():
        st = mf.Build(tmp_path / "stage", "data", recipe, {}, env="data", code=[tool])
        if not st.skip():
            with st:
                (st.partial / "out").write_text("y")
                st.publish("out", st.partial / "out")
        return st

    first = run()
    assert not first.skipped and first.m["environment"] == {"data": "lock-a"}
    assert "scripts/lib/manifest.py" in first.m["code"]["files"]
    assert run().skipped  # same lock, same code: skipped
    tool.write_text("x = 1  # a comment is code too\n")
    assert not run().skipped  # changed code: rerun
    stamp.write_text("lock-b\n")
    assert not run().skipped  # changed lock: rerun
    assert run().skipped


@pytest.mark.unit
def test_a_changed_comment_in_a_recipe_is_not_a_change(tmp_path):
    copy = tmp_path / "aloe-beta-8b"
    shutil.copytree(ROOT / "recipes/aloe-beta-8b", copy)
    sft = copy / "sft.yaml"
    sft.write_text(sft.read_text().replace("# [P] Table 5", "# [P] Table 5 (a reworded comment)", 1))
    digest = {k: core.sha256_json(v) for k, v in rc.load(copy).files.items()}
    assert digest == {k: core.sha256_json(v) for k, v in rc.load(ROOT / "recipes/aloe-beta-8b").files.items()}
    sft.write_text(sft.read_text().replace("learning_rate: 2.0e-5", "learning_rate: 3.0e-5"))
    assert core.sha256_json(rc.load(copy).files["sft"]) != digest["sft"]


@pytest.mark.unit
def test_requirements_txt_lists_exactly_the_base_lock():
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)", (ENVS / "base.lock").read_text(), re.M)
    lines = [x.strip() for x in (ROOT / "requirements.txt").read_text().splitlines()]
    listed = [tuple(x.split("==")) for x in lines if x and not x.startswith("#")]
    assert listed == pins, (
        "requirements.txt differs from envs/base.lock: regenerate it with "
        '`python -c "from scripts.drivers import lock; lock.write_requirements()"` (make lock does it too)'
    )
    assert "make install" in (ROOT / "requirements.txt").read_text()  # the header names where the stages come from


@pytest.mark.unit
def test_deepspeeds_cpu_ops_are_built_once_at_install_with_the_stages_environment(tmp_path):
    """A stand-in .venv/dpo python records what the build is given; a finished build is not started again."""
    python = tmp_path / "dpo" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "$TORCH_EXTENSIONS_DIR" > "$2"\n')
    python.chmod(0o755)
    build = install.ops_build(tmp_path)
    install.ops_wait(build)
    cache = tmp_path / "dpo" / "torch_extensions"
    assert (cache / "prebuilt.txt").read_text().strip() == str(cache)  # where the stages' DPO runs look
    assert install.ops_build(tmp_path) is None  # built: not again
    (cache / "prebuilt.txt").unlink()
    python.write_text("#!/bin/sh\necho no compiler >&2\nexit 1\n")
    with pytest.raises(SystemExit, match="prebuild.log"):
        install.ops_wait(install.ops_build(tmp_path))
    assert "no compiler" in (cache / "prebuild.log").read_text()
