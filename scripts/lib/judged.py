"""What the generated-and-judged stages (scripts/safety.py, openmedqa.py, fields.py) share: hub ids through the
profile's stand-ins, the model under test and its stage folder, the partial outputs of other settings cleared, and
the lm-eval MCQA results of the same model."""

import shutil
from pathlib import Path

from . import manifest as mf
from . import recipe as rc
from . import stages


def stand_in(a, r, model: str) -> str:
    """A hub id through the profile's `models` map (the tiny kit stands in for real models on CPU)."""
    models = (rc.read_profile(a.profile).get("models") or {}) if a.profile else {}
    return models.get(model, model).replace("{kit}", str(r.kit))


def stage_dir(a, r, suite: str) -> Path:
    """The suite's folder: per model for `--model`, else the recipe run's."""
    if a.model:
        return stages.model_eval_dir(a.runs, a.model, suite)
    return stages.folder(stages.SUITE_STAGES[suite], a.runs, r.name, suite=suite)


def model_and_dir(a, r, suite: str) -> tuple:
    """(model input, stage folder): `--model` (through the stand-ins) or the recipe run's final DPO model."""
    if a.model:
        return mf.model_input(stand_in(a, r, a.model)), stage_dir(a, r, suite)
    return stages.inputs(suite, a.runs, r.name, "model")["model"], stage_dir(a, r, suite)


def fresh_out(st: mf.Stage, a) -> Path:
    """<stage>/out, emptied when the settings changed (the partial answers then do not apply); else resumed."""
    out = st.dir / "out"
    if a.force or (st.previous or {}).get("key") != st.key:
        shutil.rmtree(out, ignore_errors=True)
    return out


def mcqa_lm_eval(a, r) -> Path | None:
    """The lm-eval output folder of this model's MCQA suite (`make eval MODEL=`, else the recipe run's), if done."""
    folder = (
        stages.model_eval_dir(a.runs, a.model, "mcqa")
        if a.model
        else stages.folder("eval", a.runs, r.name, suite="mcqa")
    )
    m = mf.read(folder)
    return stages.results_path(m) if m and m.get("status") == "done" else None
