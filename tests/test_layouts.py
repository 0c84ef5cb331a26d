"""Every source row accounted for whatever the layout of the authors' copies: each unverified copy read back to the
same rows from every plausible layout, a layout that fits nothing named with its columns, preference pairs without
a prompt column, and tool turns kept with their roles."""

import json
import random

import pytest
from test_data_prep import TEST_Q, jsonl, normalize_main

from data_prep import fixtures, normalize

UNVERIFIED = [
    e for variant in normalize.VARIANTS for e in normalize.registry(variant=variant) if e.get("layout") == "unverified"
]


def normalized(src_dir, tmp_path, entry):
    out = tmp_path / f"{src_dir.name}.jsonl"
    report = normalize.run(
        out, tmp_path / "r.jsonl", tmp_path / "r.json", src_dir, variant=entry.get("variant", "authors")
    )
    return [
        {k: v for k, v in r.items() if k in ("id", "messages", "prompt", "chosen", "rejected")} for r in jsonl(out)
    ], report


@pytest.mark.unit
@pytest.mark.parametrize("entry", UNVERIFIED, ids=lambda e: e["name"])
def test_each_unverified_copy_reads_back_the_same_rows_from_every_plausible_layout(entry, tmp_path):
    rnd = random.Random(0)
    unified = [
        normalize.convert(fixtures.ROWS[entry["name"]](rnd, n), entry["format"], entry.get("fields")) for n in range(6)
    ]
    variants = [fixtures.relayout(u) for u in unified]
    layouts = set.intersection(*(set(v) for v in variants))
    assert len(layouts) >= 2, layouts
    seen = {}
    for layout in sorted(layouts):
        d = tmp_path / layout
        d.mkdir()
        (d / f"{entry['name']}.jsonl").write_text("".join(json.dumps(v[layout]) + "\n" for v in variants))
        rows, report = normalized(d, tmp_path, entry)
        assert report["out"] == 6 and report["dropped"] == 0, (layout, report)
        assert [r["id"] for r in rows] == [f"{entry['name']}:{n}" for n in range(1, 7)]
        assert [{k: v for k, v in r.items() if k != "id"} for r in rows] == unified, layout
        seen[layout] = report["layouts"][entry["name"]]
    assert all(lay["fits"] == "6/6" and lay["declared"] == entry["format"] for lay in seen.values())
    assert len({lay["found"] for lay in seen.values()}) >= 2 or entry["format"] == "preference"  # detected, not assumed


@pytest.mark.unit
def test_a_source_in_another_known_layout_is_read_and_the_report_says_so(tmp_path):
    fixtures.build(tmp_path / "src", TEST_Q)
    cod = tmp_path / "src" / "chain_of_diagnosis.json"  # declared Alpaca (its card); served here as conversations
    rows = json.loads(cod.read_text())
    cod.write_text(json.dumps([fixtures.relayout(normalize.convert(r, "alpaca"))["sharegpt"] for r in rows]))
    normalize_main(tmp_path / "src", tmp_path, "--max-reject-rate", "1")
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["layouts"]["chain_of_diagnosis"] == {"declared": "alpaca", "found": "sharegpt", "fits": "4/4"}
    assert report["per_source"]["chain_of_diagnosis"] == {"in": 4, "out": 4, "dropped": {}, "changed": {}}
    assert report["layouts"]["meds_ins"]["found"] == "sharegpt"  # declared and found: confirmed, not switched


@pytest.mark.unit
def test_a_source_in_no_known_layout_stops_the_step_naming_it_and_its_columns(tmp_path):
    fixtures.build(tmp_path / "src", TEST_Q)
    (tmp_path / "src" / "chain_of_diagnosis.json").write_text(json.dumps([{"case": "c", "reply": "r"}] * 4))
    with pytest.raises(SystemExit) as e:
        normalize_main(tmp_path / "src", tmp_path, "--max-reject-rate", "1")
    assert "chain_of_diagnosis" in str(e.value) and "no known layout fits its rows" in str(e.value)
    assert "(declared alpaca; columns case, reply)" in str(e.value)
    assert "meds_ins" in json.loads((tmp_path / "r.json").read_text())["per_source"]  # the others are read


@pytest.mark.unit
def test_tool_turns_of_the_general_collection_are_kept_with_their_roles(tmp_path):
    fixtures.build(tmp_path / "src", TEST_Q)
    normalize_main(tmp_path / "src", tmp_path, "--max-reject-rate", "1")
    report = json.loads((tmp_path / "r.json").read_text())
    general = [r for r in jsonl(tmp_path / "n.jsonl") if r["source"] == "aloe_beta_general_collection"]
    tools = [r for r in general if any(m["role"] == "tool" for m in r["messages"])]
    assert len(general) == 10 and len(tools) == 2  # rows 5 and 10 (n = 4, 9): one of each style
    for r in tools:
        assert [m["role"] for m in r["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
        assert r["messages"][2]["content"].startswith("<tool_call>")
    assert report["per_source"]["aloe_beta_general_collection"]["dropped"] == {}
    assert report["role_sets"]["aloe_beta_general_collection"] == {
        "assistant,system,user": 8,
        "assistant,system,tool,user": 2,
    }


@pytest.mark.unit
def test_a_preference_pair_without_a_prompt_column_takes_the_turns_both_answers_share():
    user = {"role": "user", "content": "Is it safe?"}
    pair = {
        "chosen": [user, {"role": "assistant", "content": "Ask your doctor."}],
        "rejected": [user, {"role": "assistant", "content": "Yes."}],
    }
    assert normalize.convert(pair, "preference") == {
        "prompt": [user],
        "chosen": [{"role": "assistant", "content": "Ask your doctor."}],
        "rejected": [{"role": "assistant", "content": "Yes."}],
    }
    full = {"prompt": "Is it safe?", **pair}  # answers that repeat the prompt are cut to what follows it
    assert normalize.convert(full, "preference") == normalize.convert(pair, "preference")
    with pytest.raises(normalize.Malformed, match="share no first turn"):
        normalize.convert({"chosen": pair["chosen"][1:], "rejected": pair["rejected"][1:]}, "preference")


@pytest.mark.unit
def test_roles_map_to_the_templates_and_an_unknown_role_is_kept_not_the_row_lost():
    conv = [
        {"from": "human", "value": "q"},
        {"from": "function_call", "value": "call"},
        {"from": "observation", "value": "result"},
        {"role": "assistant", "content": None, "tool_calls": [{"name": "f"}]},
        {"from": "Reviewer", "value": "note"},
    ]
    msgs = normalize.convert({"conversations": conv}, "sharegpt")["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "assistant", "reviewer"]
    assert msgs[3]["content"] == '[{"name": "f"}]'
    with pytest.raises(normalize.Malformed, match="malformed turn"):
        normalize.convert({"conversations": [{"from": "human"}]}, "sharegpt")
