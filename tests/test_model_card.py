"""`make export`: the release folder of a recipe run's final model. Built on a miniature run in the real layouts (plan,
manifests, lm-eval results, verify.json) and read back with huggingface_hub's own parsers, offline: the card's
model-index holds exactly the measured columns, `.eval_results/` only those measured on a benchmark's hub dataset,
the release's model files are the final model's own (same inodes), a new final model rebuilds the release, one changed
behind its manifest or numbers of another model are refused, and a hostile recipe value changes no metadata."""

import json
import os
import shutil
from pathlib import Path

import huggingface_hub
import pytest
import yaml
from conftest import ROOT
from huggingface_hub import ModelCard, parse_eval_result_entries
from huggingface_hub.repocard import metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results

from scripts import core
from scripts.core import AloeError
from scripts.drivers import export
from scripts.lib import manifest as mf
from scripts.lib import model_card as mc
from scripts.lib import plan as pl
from scripts.lib import recipe as rc
from scripts.lib import recipe_tags

HUB = {"medqa_4options": ("GBaker/MedQA-USMLE-4-options-hf", None), "careqa_en": ("HPAI-BSC/CareQA", "CareQA_en")}
MEASURED = {"avg": 24.444, "medqa_4options": 20.0, "careqa_en": 25.0}  # and mmlu_medical: not measured
MODEL_FILES = {"config.json": b'{"model_type": "llama"}', "model.safetensors": b"\x00" * 64, "sub/extra.json": b"{}"}


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return path


def output(path):
    return {"path": str(path), "sha256": core.sha256_path(path)}


def manifest(folder, stage, *, profile, rendered=None, inputs=None, outputs=None, tools=None, metrics=None, key=None):
    m = {"schema": mf.SCHEMA, "stage": stage, "status": "done", "key": key or f"key-{stage}",
         "recipe": {"path": f"recipes/aloe-beta-8b/{stage}.yaml", "profile": profile, "sha256": "r",
                    "rendered": rendered or {}},
         "inputs": inputs or {}, "environment": {stage: f"lock-{stage}"}, "code": {"sha256": f"code-{stage}", "files": []},
         "outputs": outputs or {}, "tools": tools or {}, "launcher": {"kind": "local", "host": "test"}, "git_sha": "g",
         "started": f"2026-12-07T16:0{len(stage)}:00+00:00", "finished": "2026-12-07T16:09:50+00:00", "wall_s": 1.0,
         "metrics": metrics or {}}  # fmt: skip
    write(folder / "manifest.json", json.dumps(m, indent=1))
    return m


def mini_run(tmp_path, tiny=True, edit=None):
    """A finished recipe run in the layout of runs/aloe-beta-8b-cpu-tiny: tiny (profile cpu-tiny, the kit's stand-ins,
    local fixtures) or as on a cluster (hub models, the benchmarks' hub datasets). Returns (run folder, reported)."""
    runs, recipe, profile = tmp_path / "runs", tmp_path / "recipe", "cpu-tiny" if tiny else None
    run = runs / ("aloe-beta-8b-cpu-tiny" if tiny else "aloe-beta-8b")
    shutil.copytree(ROOT / "recipes" / "aloe-beta-8b", recipe)
    for stem, (old, new) in (edit or {}).items():
        text = (recipe / f"{stem}.yaml").read_text()
        (recipe / f"{stem}.yaml").write_text(text.replace(old, new) if old else text + new)
    r = rc.load(recipe, profile, kit=runs / "tiny-kit")
    if tiny:
        base, instruct = (str(write(runs / "tiny-kit" / m / "config.json", m).parent) for m in ("base", "instruct"))
    else:
        base, instruct = "meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-8B-Instruct"
    where = {"file": str(run / "data/sources/meds_ins.jsonl")} if tiny else {
        "dataset": "HPAI-BSC/MedS-Ins", "config": None, "split": "train", "revision": "abc123", "data_files": []}  # fmt: skip
    sft_data, chunk = write(run / "data/sft.jsonl", "{}\n"), write(run / "data/dpo/chunk_0.jsonl", "{}\n")
    manifest(run / "data", "data", profile=profile, rendered={"fixtures": tiny, "sources": "authors", "seed": 0},
             outputs={"sft": output(sft_data), "dpo_chunk_0": output(chunk)}, metrics={"read_from": {"meds_ins": where}})  # fmt: skip
    sft_model = write(run / "sft/model/config.json", "sft").parent
    manifest(run / "sft", "sft", profile=profile, rendered={"base_model": base}, tools={"axolotl": "0.19.0"},
             inputs={"data": output(sft_data), "base_model": mf.model_input(base)}, outputs={"model": output(sft_model)})  # fmt: skip
    merged = write(run / "merge/model/config.json", "merged").parent
    manifest(run / "merge", "merge", profile=profile, tools={"mergekit": "0.1.5"},
             rendered={"merge_method": "dare_ties", "base_model": base, "models": [
                 {"model": str(sft_model), "parameters": {"density": 0.5}}, {"model": instruct}]},
             inputs={"sft": output(sft_model), "model_1": mf.model_input(instruct), "base": mf.model_input(base)},
             outputs={"model": output(merged)})  # fmt: skip
    model = run / "dpo/06-stage2-0/model"
    for name, content in MODEL_FILES.items():
        write(model / name, content)
    final = new_dpo(run, model, profile)
    tasks = {t: ("json", None) for t in HUB} if tiny else HUB
    results = write(run / "eval-mcqa/lm_eval/model/results_2026-12-07T16-09-24.json", json.dumps({
        "results": {("aloe_local_" if tiny else "") + t: {"acc,none": MEASURED[t] / 100} for t in HUB},
        "configs": {("aloe_local_" if tiny else "") + t: {"dataset_path": p, "dataset_name": c, "test_split": "test",
                                                          "output_type": "multiple_choice"} for t, (p, c) in tasks.items()}}))  # fmt: skip
    manifest(run / "eval-mcqa", "eval", profile=profile, rendered={"local": tiny, "limit": None},
             inputs={"model": final}, outputs={"lm_eval": output(run / "eval-mcqa/lm_eval")}, tools={"lm_eval": "0.4.13"})  # fmt: skip
    rows = [{"column": c, "task": c, "reported": v, "measured": v, "stderr": 1.0, "result": "pass"}
            for c, v in MEASURED.items()] + [{"column": "mmlu_medical", "task": "mmlu_medical", "measured": None}]  # fmt: skip
    write(run / "verify/verify.json", json.dumps({"model": "tiny", "table": "fixture", "setting": "0-shot",
                                                  "results": str(results), "rows": rows}))  # fmt: skip
    reported = write(tmp_path / "reported.yaml", yaml.safe_dump({"tables": {"fixture": {
        "measure": {"metric": "acc", "scale": 100, "task": "{col}", "floor": 2.0},
        "columns": {"avg": "Avg", "medqa_4options": "MedQA", "careqa_en": "CareQA", "mmlu_medical": "Medical MMLU"}}}}))  # fmt: skip
    for name, stage, folder, args in (("dpo-stage2-1", "dpo", run / "dpo", ["--upto", 6]),
                                      ("verify", "verify", run / "verify", ["--reported", str(reported)])):  # fmt: skip
        job = {"name": name, "stage": stage, "folder": str(folder), "args": args}
        pl.write(pl.render(r, runs, job), run / "plan" / f"{name}.json")
    return run, tmp_path / "elsewhere.yaml"  # the verify plan names the reported file: the default is never read


def new_dpo(run, model, profile, key="key-dpo"):
    """The DPO stage's manifests for the model folder as it is now (a finished run of that stage)."""
    final = output(model)
    manifest(model.parent, "dpo-run", profile=profile, outputs={"model": final}, key=key + "-run")
    manifest(run / "dpo", "dpo", profile=profile, outputs={"model": final}, tools={"openrlhf": "0.11.2"}, key=key,
             inputs={"model": output(run / "merge/model"), "data_0": output(run / "data/dpo/chunk_0.jsonl")})  # fmt: skip
    return final


def card_of(release):
    readme = release / "README.md"
    meta = metadata_load(readme)
    return meta, ModelCard.load(readme), model_index_to_eval_results(meta["model-index"])[1]


@pytest.mark.unit
def test_the_card_and_its_metadata_hold_exactly_the_measured_columns(tmp_path):
    run, reported = mini_run(tmp_path, tiny=False)
    release, built = export.export(run, reported)
    assert built and release == run / "release"
    meta, card, results = card_of(release)
    got = {
        (x.dataset_type, x.dataset_config): (x.metric_value, x.metric_type, x.task_type, x.verified) for x in results
    }
    assert got == {(*HUB[t], ): (MEASURED[t], "accuracy", "multiple-choice", False) for t in HUB} | {
        ("avg", None): (24.444, "accuracy", "multiple-choice", False)}  # fmt: skip
    assert sorted(map(repr, card.data.eval_results)) == sorted(map(repr, results))
    assert {x.dataset_name for x in results} == {"MedQA", "CareQA", "Avg (no single hub dataset)"}
    entries = parse_eval_result_entries(yaml.safe_load((release / ".eval_results/aloe-repro.yaml").read_text()))
    assert {(e.dataset_id, e.task_id): e.value for e in entries} == {
        ("GBaker/MedQA-USMLE-4-options-hf", "default"): 20.0, ("HPAI-BSC/CareQA", "CareQA_en"): 25.0}  # fmt: skip
    assert meta["base_model"] == ["meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-8B-Instruct"]
    assert meta["datasets"] == ["HPAI-BSC/MedS-Ins"] and meta["library_name"] == "transformers"
    assert {"medical", "aloe", "axolotl", "mergekit", "openrlhf"} <= set(meta["tags"]) and "license" not in meta
    text = card.text
    assert "| learning_rate | 2e-05 |  | P | Table 5 |" in text  # the recipe's value with its tag and note
    assert "| merge partner | meta-llama/Llama-3.1-8B-Instruct | meta-llama/Llama-3.1-8B-Instruct | - |" in text
    assert (
        "| dpo | data_0 | aloe-beta-8b/data/dpo/chunk_0.jsonl | " + core.sha256_path(run / "data/dpo/chunk_0.jsonl")
        in text
    )
    assert (
        "hf upload <namespace>/<name>" in text and "| aloe-beta-8b/dpo | dpo | dpo lock-dpo | openrlhf 0.11.2 |" in text
    )


@pytest.mark.unit
def test_a_fixture_run_names_no_hub_dataset_and_says_what_stood_in(tmp_path):
    run, reported = mini_run(tmp_path, tiny=True)
    release = export.export(run, reported)[0]
    meta, card, results = card_of(release)
    assert {x.dataset_type: x.metric_value for x in results} == MEASURED  # the values, under no benchmark's hub id
    assert all(x.dataset_name.endswith("(local fixture)") for x in results)
    assert not (release / ".eval_results").exists() and "base_model" not in meta and "datasets" not in meta
    assert "**Not HPAI-BSC/Llama3.1-Aloe-Beta-8B.** The profile cpu-tiny" in card.text
    assert "| SFT base | meta-llama/Llama-3.1-8B | tiny-kit/base | " in card.text
    assert '| sequence_len | 16384 | 512 | P | Table 5 "16K" |' in card.text  # as written, as run by the profile


@pytest.mark.unit
def test_the_release_holds_the_final_models_own_files_and_writes_nothing_into_it(tmp_path):
    run, reported = mini_run(tmp_path)
    model = run / "dpo/06-stage2-0/model"
    recorded = core.read_json(run / "dpo/manifest.json")["outputs"]["model"]
    release = export.export(run, reported)[0]
    for name, content in MODEL_FILES.items():
        assert os.path.samefile(release / name, model / name) and (release / name).read_bytes() == content
    made = sorted(str(f.relative_to(release)) for f in release.rglob("*") if f.is_file())
    assert made == sorted([*MODEL_FILES, "README.md", "release.json"])
    assert core.sha256_path(model) == recorded["sha256"] and not (model / "README.md").exists()
    record = core.read_json(release / "release.json")
    assert record["model"] == recorded and record["manifest"]["key"] == "key-dpo"
    assert record["files"] == dict.fromkeys(MODEL_FILES, True)  # every file linked, none copied
    assert not (run / "release.partial").exists()


@pytest.mark.unit
def test_an_unchanged_run_keeps_its_release_and_a_new_final_model_rebuilds_it(tmp_path, capsys):
    run, reported = mini_run(tmp_path)
    args = ["--run", str(run), "--reported", str(reported)]
    with pytest.raises(AloeError, match="outside the runs root"):  # the default root, runs/: nothing written
        export.main(args)
    assert not (run / "release").exists()
    args += ["--runs", str(tmp_path)]
    assert export.main(args) == 0 and ": written" in capsys.readouterr().out
    readme = (run / "release/README.md").stat().st_ino
    assert export.main(args) == 0 and ": up to date" in capsys.readouterr().out
    assert (run / "release/README.md").stat().st_ino == readme
    model = run / "dpo/06-stage2-0/model"
    (model / "model.safetensors").unlink()  # the DPO stage reran: a new file, a new manifest ...
    write(model / "model.safetensors", b"\x01" * 64)
    final = new_dpo(run, model, "cpu-tiny", key="key-dpo-2")
    m = core.read_json(run / "eval-mcqa/manifest.json")  # ... and so did the evaluation
    write(run / "eval-mcqa/manifest.json", json.dumps({**m, "inputs": {"model": final}}))
    release, built = export.export(run, reported)
    assert built and (release / "model.safetensors").read_bytes() == b"\x01" * 64
    assert os.path.samefile(release / "model.safetensors", model / "model.safetensors")
    assert core.read_json(release / "release.json")["manifest"]["key"] == "key-dpo-2"
    assert f"sha256 {final['sha256']}" in (release / "README.md").read_text()


@pytest.mark.unit
def test_a_model_changed_behind_its_manifest_or_numbers_of_another_model_are_refused(tmp_path):
    run, reported = mini_run(tmp_path)
    export.export(run, reported)
    model = run / "dpo/06-stage2-0/model"
    (model / "model.safetensors").unlink()
    write(model / "model.safetensors", b"\x02" * 64)  # no stage reran
    with pytest.raises(AloeError, match="changed since its stage recorded it"):
        export.export(run, reported)
    new_dpo(run, model, "cpu-tiny", key="key-dpo-2")  # the DPO stage reran, the evaluation did not
    with pytest.raises(AloeError, match="eval-mcqa measured another model than the final"):
        export.export(run, reported)
    assert (run / "release/model.safetensors").read_bytes() == b"\x00" * 64  # the last good release stays


@pytest.mark.unit
def test_a_hostile_recipe_value_changes_no_metadata(tmp_path):
    hostile = "llama3.1\n---\nfoo: bar\n| a | b |"
    clean = mini_run(tmp_path / "clean", tiny=False, edit={"recipe": (None, "license: llama3.1\n")})
    bad = mini_run(tmp_path / "bad", tiny=False, edit={
        "recipe": (None, f"license: {json.dumps(hostile)}\n"),
        "sft": ("chat_template: llama3 ", f"chat_template: {json.dumps(hostile + '`')} "),
        "merge": ("  - model: meta-llama/Llama-3.1-8B-Instruct", "  - model: \"x\\n---\\nlicense: evil\""),
    })  # fmt: skip
    meta_clean = card_of(export.export(*clean)[0])[0]
    release = export.export(*bad)[0]
    meta = card_of(release)[0]
    assert meta == {**meta_clean, "license": hostile} and "foo" not in meta
    body = (release / "README.md").read_text().split("\n---\n", 1)[1]
    assert "---" not in body.splitlines() and not any(
        x.startswith(("foo", "license", "|  a")) for x in body.splitlines()
    )
    assert "| chat_template | `` llama3.1\\n---\\nfoo: bar\\n\\| a \\| b \\|` `` |  | C |" in body


@pytest.mark.unit
def test_comments_give_each_value_its_tag_and_note():
    text = (
        "a: 1          # [P] §5.1\n"
        "b:            # [C] a list\n"
        "  - x\n"
        "  - y         # its own note\n"
        "c: {d: 2}     # [D] 128 / 4\n"
        'e: "v # no"   # [C] quoted hash\n'
        "f: 3          # [C] first line\n"
        "                       # continued\n"
        "g: 4\n"
    )
    assert recipe_tags.comments(text) == {
        "a": ("P", "§5.1"), "b": ("C", "a list"), "b.0": ("C", ""), "b.1": ("C", "its own note"),
        "c": ("D", "128 / 4"), "c.d": ("D", "128 / 4"), "e": ("C", "quoted hash"), "f": ("C", "first line continued"),
        "g": (None, ""),
    }  # fmt: skip


@pytest.mark.chain
def test_the_smoke_runs_release_parses_with_the_hubs_own_loader(chain):
    run = chain[1]
    release = export.export(run)[0]
    meta, card, results = card_of(release)
    rows = core.read_json(run / "verify/verify.json")["rows"]
    assert {x.dataset_type: x.metric_value for x in results} == {
        r["task"]: r["measured"] for r in rows if r["measured"] is not None}  # fmt: skip
    assert sorted(map(repr, card.data.eval_results)) == sorted(map(repr, results)) and meta["library_name"]
    model = mc.final_model(run)[0]
    assert all(os.path.samefile(release / f.name, f) for f in Path(model["path"]).iterdir() if f.is_file())
