"""What the generated-and-judged stages (scripts/safety.py, openmedqa.py, fields.py) share: hub ids through the
profile's stand-ins, the model under test and its stage folder, their settings and prepared run, answering then
judging, the partial outputs of other settings cleared, and the lm-eval MCQA results of the same model.
Their options arrive as the driver's Context (ctx.opts: model, backend, local, limit, judge_url)."""

from pathlib import Path

from scripts.core import AloeError

from . import driver, generation, stages
from . import manifest as mf
from . import recipe as rc


def stand_in(r: rc.Recipe, model: str) -> str:
    """A hub id through the profile's `models` map (the tiny kit stands in for real models on CPU); a stand-in
    that is not built is refused."""
    mapped = r.models.get(model, model)
    out = mapped.replace("{kit}", str(r.kit))
    if out != mapped and not Path(out).is_dir():
        raise AloeError(
            f"{model}: profile {r.profile} stands in {out}, not built: `make tiny-kit`, or --runs with its tiny-kit"
        )
    return out


def folder(ctx: driver.Context, suite: str) -> Path:
    """The suite's folder: per model for `--model`, else the recipe run's."""
    if ctx.opts["model"]:
        return stages.model_eval_dir(ctx.runs, ctx.opts["model"], suite)
    return stages.folder(stages.suite_stage(suite), ctx.runs, ctx.recipe.name, suite=suite)


def model_input(ctx: driver.Context, suite: str) -> dict:
    """`--model` (through the stand-ins) or the recipe run's final DPO model."""
    if ctx.opts["model"]:
        return mf.model_input(stand_in(ctx.recipe, ctx.opts["model"]))
    return driver.inputs(suite, ctx.runs, ctx.recipe.name, "model")["model"]


def settings(ctx: driver.Context, judge: str, max_tokens: int, judge_max_tokens: int, **extra) -> dict:
    """The model under test samples as the recipe says (medprompt.yaml temperature and top_p, the model card's);
    the judge decodes greedily."""
    mp, ev = ctx.recipe.files["medprompt"], ctx.recipe.files["eval"]
    return {
        **extra,
        "limit": ctx.opts["limit"],
        "temperature": mp["temperature"],
        "top_p": mp["top_p"],
        "max_tokens": max_tokens,
        "dtype": ev["dtype"],
        "backend": ctx.opts["backend"],
        "judge": judge,
        "judge_url": ctx.opts["judge_url"],
        "judge_max_tokens": judge_max_tokens,
    }


def prepared(
    ctx: driver.Context, suite: str, settings: dict, inputs: dict, seed: int, tools=True, resumable=True, **own
):
    """The suite's prepared run, in the backend's env; resumable: answers and verdicts are appended as they finish."""
    backend = ctx.opts["backend"]
    return driver.Prepared(
        folder(ctx, suite), driver.recipe_info(ctx.recipe, "eval", settings), inputs, generation.env(backend),
        code=tuple(generation.code(backend)), numbers={"seed": seed}, tools=generation.TOOLS if tools else (),
        resumable=resumable, own=own,
    )  # fmt: skip


def answer_and_judge(ctx, b, out: Path, model: str, s: dict, items: list, ask, judge_of, seed: int) -> tuple:
    """({id: answer}, {id: verdict}): each item (with an `id`) asked as `ask(item)` messages with seed + its index,
    then the judge on `judge_of(item, answer text)`, on a judge server with --judge-url."""
    o = ctx.opts
    gen = dict(dtype=s["dtype"], log=b.dir / "log.txt", gpus=ctx.recipe.world("eval"), online=not o["local"])
    asked = [{"id": x["id"], "messages": ask(x), "seed": seed + i} for i, x in enumerate(items)]
    answers = generation.generate(
        "answers", asked, out, backend=o["backend"], model=model, temperature=s["temperature"], top_p=s["top_p"],
        max_tokens=s["max_tokens"], **gen,
    )  # fmt: skip
    judged = [{"id": x["id"], "messages": judge_of(x, answers[x["id"]]["text"]), "seed": 0} for x in items]
    verdicts = generation.generate(
        "judge", judged, out, backend="openai" if o["judge_url"] else o["backend"], model=s["judge"],
        base_url=o["judge_url"], temperature=0.0, top_p=1.0, max_tokens=s["judge_max_tokens"], **gen,
    )  # fmt: skip
    return answers, verdicts


def work_dir(b: mf.Build) -> Path:
    """Where answers and verdicts are appended as they finish: the build's out/ (kept while an unfinished attempt
    with the same settings resumes; published to <stage>/out on success)."""
    out = b.partial / "out"
    out.mkdir(parents=True, exist_ok=True)
    return out


def mcqa_lm_eval(ctx: driver.Context) -> Path | None:
    """The lm-eval output folder of this model's MCQA suite (`make eval MODEL=`, else the recipe run's), if done."""
    model = ctx.opts["model"]
    where = (
        stages.model_eval_dir(ctx.runs, model, "mcqa")
        if model
        else stages.folder("eval", ctx.runs, ctx.recipe.name, suite="mcqa")
    )
    m = mf.read(where)
    return mf.results(where, "judged suite") if m and m.get("status") == "done" else None
