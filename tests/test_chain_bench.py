"""The chain bench reads what it reports: the smoke summary's stage walls and each manifest's build wall."""

import json

import pytest

from scripts.bench import chain_bench

pytestmark = pytest.mark.unit

SUMMARY = """\
smoke summary (tiny model on CPU: these figures show the chain works, not the paper's numbers)
stage     | wall         | output                 | what shows it worked
----------+--------------+------------------------+---------------------
tiny-kit  | 22 s         | runs/tiny-kit/base     | llama 186816 params
sft       | 81 s         | runs/x/sft/model       | loss 6.5396 -> 6.5452 (6 steps)
dpo       | 3 s (skipped) | runs/x/dpo/06/model   | 6 runs
"""


def test_the_summary_rows_give_each_stage_its_wall_and_nothing_else():
    rows = {m[1]: int(m[2]) for line in SUMMARY.splitlines() if (m := chain_bench.ROW.match(line))}
    assert rows == {"tiny-kit": 22, "sft": 81, "dpo": 3}


def test_tool_walls_sum_the_dpo_runs_and_read_every_stage(tmp_path):
    def manifest(folder, stage, wall):
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps({"stage": stage, "wall_s": wall}))

    run = tmp_path / "r"
    manifest(tmp_path / "tiny-kit", "tiny-kit", 20.0)
    manifest(run / "sft", "sft", 70.5)
    manifest(run / "dpo", "dpo", 1.0)  # the stage's own wall: replaced by its runs' sum
    for i, wall in enumerate((30.0, 31.5), 1):
        manifest(run / "dpo" / f"0{i}-stage1-{i}", "dpo-run", wall)
    (run / "plan").mkdir()
    assert chain_bench.tool_walls(run) == {"tiny-kit": 20.0, "sft": 70.5, "dpo": 61.5}
