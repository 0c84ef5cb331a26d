"""The registry against the sources' real layouts: `make data-check` on an offline mirror laid out like the
hub passes, and names the source and the reason for a wrong column, a missing config or an id that does not
exist; no eval task reads a repo that still holds a loading script."""

import json
import shutil

import pytest
import yaml
from conftest import ROOT, run_py

from data_prep import check as data_check
from scripts.lib import venv

REGISTRY = yaml.safe_load((ROOT / "data_prep/sources.yaml").read_text())
ENTRIES = [e for block in REGISTRY.values() for e in block]
SCRIPT_ONLY = yaml.safe_load((ROOT / "data_prep/script_only.yaml").read_text())


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    d = tmp_path_factory.mktemp("hub")
    p = venv.run(
        "data",
        ["python", "-m", "data_prep.fixtures", "--hub-dir", d],
        capture=True,
        extra_env={"PYTHONPATH": str(ROOT)},
    )
    assert p.returncode == 0, p.stderr
    return d


def check(hub, *args):
    return run_py("scripts.drivers.data_check", "--hub-dir", hub, *args, check=False)


def planted(mirror, tmp_path, change):
    hub = tmp_path / "hub"
    shutil.copytree(mirror, hub)
    change(hub)
    return hub


@pytest.mark.parametrize("sources", ["authors", "upstream"])
@pytest.mark.chain
def test_preflight_passes_on_the_mirror_and_prints_one_row_per_source(mirror, sources):
    p = check(mirror, "--sources", sources)
    assert p.returncode == 0, p.stdout + p.stderr
    head = "source | hub id | config/split | columns seen | layout | format fits | rows sampled | status"
    assert " | ".join(w.strip() for w in p.stdout.splitlines()[1].split("|")) == head
    names = [e["name"] for e in ENTRIES if e.get("variant", sources) == sources]
    rows = {line.split("|")[0].strip(): line for line in p.stdout.splitlines() if "|" in line}
    assert set(names) <= set(rows)
    for e in ENTRIES:
        if e["name"] in names and e.get("hub"):
            assert rows[e["name"]].rstrip().endswith("| ok"), rows[e["name"]]
    assert "eval datasets:" in p.stdout and "aloe_pubmedqa" in p.stdout


@pytest.mark.chain
def test_a_wrong_column_fails_naming_source_and_column(mirror, tmp_path):
    def rename(hub):
        f = hub / "HPAI-BSC/medmcqa-cot-llama31/medmcqa_llama31_cot.json"
        rows = json.loads(f.read_text())
        f.write_text(json.dumps([{("completion" if k == "response" else k): v for k, v in r.items()} for r in rows]))

    p = check(planted(mirror, tmp_path, rename))
    assert p.returncode == 1
    assert "medmcqa_cot_llama31: FAIL: missing column 'response' (unmapped: 'completion')" in p.stdout


@pytest.mark.chain
def test_a_missing_config_fails_naming_source_and_config(mirror, tmp_path):
    def drop(hub):
        readme = hub / "HPAI-BSC/Egida/README.md"
        lines = readme.read_text().split("- config_name: ")
        readme.write_text("- config_name: ".join(x for x in lines if not x.startswith("Egida-DPO-Meta-Llama-3.1-8B")))

    p = check(planted(mirror, tmp_path, drop))
    assert p.returncode == 1
    why = next(line for line in p.stdout.splitlines() if line.startswith("  egida_dpo_llama31_8b: FAIL"))
    assert "Egida-DPO-Meta-Llama-3.1-8B-Instruct" in why and "not found" in why


@pytest.mark.chain
def test_a_source_id_that_does_not_exist_fails(mirror, tmp_path):
    p = check(planted(mirror, tmp_path, lambda hub: shutil.rmtree(hub / "HPAI-BSC/Polymed-QA")))
    assert p.returncode == 1
    assert "polymed_qa: FAIL: FileNotFoundError: dataset HPAI-BSC/Polymed-QA not found" in p.stdout


@pytest.mark.chain
def test_a_subset_filter_that_matches_nothing_fails(mirror, tmp_path):
    def retag(hub):
        import subprocess

        f = hub / "TsinghuaC3I/UltraMedical/data/train-00000-of-00001.parquet"
        code = (
            "import pyarrow.parquet as pq, pyarrow as pa, sys; t = pq.read_table(sys.argv[1]).to_pylist();"
            "[r.update(id=r['id'].replace('WikiInstruct,', 'Wiki,')) for r in t];"
            "pq.write_table(pa.Table.from_pylist(t), sys.argv[1])"
        )
        subprocess.run([venv.bin_dir("data") / "python", "-c", code, f], check=True)

    p = check(planted(mirror, tmp_path, retag), "--sources", "upstream")
    assert p.returncode == 1
    assert "ultramedical_wikiinstruct: FAIL: no rows whose id starts with 'WikiInstruct,'" in p.stdout


@pytest.mark.chain
def test_no_eval_task_reads_a_script_only_repo():
    tasks = []
    for d in ("recipes/aloe-beta-8b", "recipes/aloe-beta-70b"):
        e = yaml.safe_load((ROOT / d / "eval.yaml").read_text())
        tasks += e["tasks"] + e["open_tasks"]
    p = venv.run(
        "eval", ["lm_eval_datasets.py", "--include-path", ROOT / "recipes/tasks", *set(tasks), "pubmedqa"], capture=True
    )
    assert p.returncode == 0, p.stderr[-2000:]
    found = json.loads(p.stdout.strip().splitlines()[-1])

    def script_only(ds):
        return ds["path"] in SCRIPT_ONLY and (ds["revision"] or "main") in SCRIPT_ONLY[ds["path"]]["revisions"]

    assert script_only(found.pop("pubmedqa"))  # lm-eval's own pubmedqa is why aloe_pubmedqa exists
    assert [t for t, ds in found.items() if script_only(ds)] == []


@pytest.mark.unit
def test_med_dialog_main_is_parquet_and_its_script_commit_is_still_known():
    assert data_check.known_script("lighteval/med_dialog", None) is None  # hub PR #1 removed med_dialog.py from main
    assert "med_dialog.py" in data_check.known_script(
        "lighteval/med_dialog", "9f25a4c3535a6654634076dcd0f346d37f2478c0"
    )
    assert data_check.known_script("lighteval/med_dialog", "refs/convert/parquet") is None


@pytest.mark.unit
def test_registry_names_the_model_card_datasets_and_no_id_that_does_not_exist():
    hubs = {e["hub"] for e in ENTRIES}
    card = {
        "HPAI-BSC/MedS-Ins",
        "HPAI-BSC/chain-of-diagnosis",
        "HPAI-BSC/ultramedical",
        "HPAI-BSC/Aloe-Beta-General-Collection",
        "HPAI-BSC/Polymed-QA",
        "HPAI-BSC/Aloe-Beta-DPO",
        *(f"HPAI-BSC/{s}-cot-llama31" for s in ("medmcqa", "medqa", "pubmedqa", "headqa", "MMLU-medical")),
    }
    assert card <= hubs
    gone = {"Henrychur/MMedS-Ins", "casey-martin/MedInstruct-52k", "mashqa", "bioasq-task-b", "aci-bench", "liveqa"}
    assert not hubs & (gone | set(SCRIPT_ONLY))
    for e in ENTRIES:
        assert e["copy"] in ("authors", "upstream", "mirror") and e["layout"] in ("verified", "unverified"), e["name"]
        assert isinstance(e["paper_count"], int) and (e["hub"] or e["why"]), e["name"]
    # one hub dataset feeding several entries must split it with a filter
    by_hub = {}
    for e in ENTRIES:
        by_hub.setdefault((e["hub"], e.get("config")), []).append(e)
    for (hub, _), es in by_hub.items():
        if hub and len(es) > 1:
            assert all(e.get("filter") for e in es), hub


@pytest.mark.unit
def test_pubmedqa_is_the_official_test_set():
    ids = json.loads((ROOT / "recipes/tasks/mcqa/pubmedqa_test_ids.json").read_text())
    assert ids["count"] == len(set(ids["pubids"])) == 500
    import importlib.util

    spec = importlib.util.spec_from_file_location("pq", ROOT / "recipes/tasks/mcqa/pubmedqa_utils.py")
    pq = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pq)

    class Rows(list):
        def filter(self, keep):
            return Rows(r for r in self if keep(r))

    full = Rows([{"pubid": int(i)} for i in ids["pubids"]] + [{"pubid": 1 + n} for n in range(500)])
    assert len(pq.official_test(full)) == 500
    with pytest.raises(ValueError, match="499 of the 500"):
        pq.official_test(Rows(full[1:] + [{"pubid": 0}]))
    doc = {"question": "Q?", "context": {"contexts": ["a", "b"]}}
    assert pq.doc_to_text(doc) == "Abstract: a\nb\nQuestion: Q?\nAnswer:"  # lm-eval pubmedqa's prompt


@pytest.mark.chain
def test_a_copy_in_another_layout_is_read_and_named_and_one_in_no_known_layout_fails(mirror, tmp_path):
    def realign(hub):
        f = hub / "HPAI-BSC/MedS-Ins/MedS-Ins.json"  # the registry's first guess is conversations
        rows = [r["conversations"] for r in json.loads(f.read_text())]
        f.write_text(json.dumps([{"instruction": r[0]["value"], "input": "", "output": r[1]["value"]} for r in rows]))
        f = hub / "HPAI-BSC/ultramedical/ultramedical.json"
        f.write_text(json.dumps([{"query": "q", "reply": "a"}] * 3))

    p = check(planted(mirror, tmp_path, realign))
    assert p.returncode == 1
    rows = {line.split("|")[0].strip(): line for line in p.stdout.splitlines() if "|" in line}
    assert "declared sharegpt, found alpaca" in rows["meds_ins"] and rows["meds_ins"].rstrip().endswith("| ok")
    assert "ultramedical: FAIL: no known layout fits (declared sharegpt; columns query, reply)" in p.stdout
    assert "FAILED: ultramedical" in p.stdout
