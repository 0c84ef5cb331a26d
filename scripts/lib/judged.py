"""What the generated-and-judged stages (scripts/safety.py, openmedqa.py, fields.py) share: hub ids through the
profile's stand-ins, the model under test and its stage folder, their settings and Stage, answering then judging,
the partial outputs of other settings cleared, and the lm-eval MCQA results of the same model."""

import shutil
from pathlib import Path

from . import cli, generation, stages
from . import manifest as mf
from . import recipe as rc


def stand_in(a, r, model: str) -> str:
    """A hub id through the profile's `models` map (the tiny kit stands in for real models on CPU); a stand-in
    that is not built is refused."""
    models = (rc.read_profile(r.profile).get("models") or {}) if r.profile else {}  # the plan's profile too
    mapped = models.get(model, model)
    out = mapped.replace("{kit}", str(r.kit))
    if out != mapped and not Path(out).is_dir():
        raise SystemExit(
            f"{model}: profile {r.profile} stands in {out}, not built: `make tiny-kit`, or --runs with its tiny-kit"
        )
    return out


def stage_dir(a, r, suite: str) -> Path:
    """The suite's folder: per model for `--model`, else the recipe run's."""
    if a.model:
        return stages.model_eval_dir(a.runs, a.model, suite)
    return stages.folder(stages.suite_stage(suite), a.runs, r.name, suite=suite)


def model_and_dir(a, r, suite: str) -> tuple:
    """(model input, stage folder): `--model` (through the stand-ins) or the recipe run's final DPO model."""
    if a.model:
        return mf.model_input(stand_in(a, r, a.model)), stage_dir(a, r, suite)
    return stages.inputs(suite, a.runs, r.name, "model")["model"], stage_dir(a, r, suite)


def settings(a, r, judge: str, max_tokens: int, judge_max_tokens: int, **extra) -> dict:
    """The model under test samples as the recipe says (medprompt.yaml temperature and top_p, the model card's);
    the judge decodes greedily."""
    mp, ev = r.files["medprompt"], r.files["eval"]
    return {
        **extra,
        "limit": a.limit,
        "temperature": mp["temperature"],
        "top_p": mp["top_p"],
        "max_tokens": max_tokens,
        "dtype": ev["dtype"],
        "backend": a.backend,
        "judge": judge,
        "judge_url": a.judge_url,
        "judge_max_tokens": judge_max_tokens,
    }


def stage(a, r, suite: str, settings: dict, inputs: dict, seed: int) -> mf.Stage:
    """The suite's Stage: resumable (answers and verdicts are appended as they finish), in the backend's env."""
    return mf.Stage(
        stage_dir(a, r, suite),
        suite,
        cli.recipe_info(r, "eval", settings),
        inputs,
        a.force,
        clean=False,
        seed=seed,
        env=generation.env(a.backend),
        code=generation.code(a.backend),
    )


def answer_and_judge(a, r, st, out: Path, model: str, s: dict, items: list, ask, judge_of, seed: int) -> tuple:
    """({id: answer}, {id: verdict}): each item (with an `id`) asked as `ask(item)` messages with seed + its index,
    then the judge on `judge_of(item, answer text)`, on a judge server with --judge-url."""
    gen = dict(dtype=s["dtype"], log=st.dir / "log.txt", gpus=r.world("eval"), online=not a.local)
    asked = [{"id": x["id"], "messages": ask(x), "seed": seed + i} for i, x in enumerate(items)]
    answers = generation.generate(
        "answers", asked, out, backend=a.backend, model=model, temperature=s["temperature"], top_p=s["top_p"],
        max_tokens=s["max_tokens"], **gen,
    )  # fmt: skip
    judged = [{"id": x["id"], "messages": judge_of(x, answers[x["id"]]["text"]), "seed": 0} for x in items]
    verdicts = generation.generate(
        "judge", judged, out, backend="openai" if a.judge_url else a.backend, model=s["judge"],
        base_url=a.judge_url, temperature=0.0, top_p=1.0, max_tokens=s["judge_max_tokens"], **gen,
    )  # fmt: skip
    return answers, verdicts


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
