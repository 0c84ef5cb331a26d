"""Offline source fixtures in each source's real layout (../shared/reference/hub_sources.md), with planted problems.

Two builders share one row generator per registry source (`ROWS`: the documented columns, capitalised,
nested, JSON-string or tagged as the real data is; for a layout that is unverified, the registry's stated
assumption):
- `build(DIR, ...)`: a local corpus DIR/<source>.jsonl (or .json) for the default source set, as
  `--sources-dir` reads it, with planted problems and DIR/planted.json naming the step and reason expected
  for each: exact and near duplicates, test questions (contamination), dirty rows (a URL, an e-mail, an
  empty answer, an irrelevant answer, a malformed multiple-choice answer) and broken records (a broken
  JSON line, an invalid UTF-8 byte, a byte-order mark, a JSON-array file, a missing field, a wrong type,
  an answer not among its options, chosen equal to rejected, a lone surrogate).
- `build_hub(DIR)`: a folder laid out like the hub, DIR/<owner>/<repo>/, with the repo's data files as
  the hub serves them (parquet, JSON arrays, JSON Lines, CSV; multi-config repos declare their configs
  in README.md as the hub does), for every registry source of both sets, for `make data-check --hub-dir`.

  python -m data_prep.fixtures --out DIR [--test-question Q]      the local corpus
  python -m data_prep.fixtures --hub-dir DIR                      the hub mirror (needs pyarrow: .venv/data)
"""

import argparse
import csv
import json
import random
from pathlib import Path

VOCAB = (
    "patient fever cough insulin renal hepatic cardiac pulmonary biopsy lesion chronic acute dose infusion "
    "antibiotic steroid thrombosis embolism anemia platelet neutrophil lymphocyte cortisol thyroid glucose "
    "ketone sodium potassium calcium magnesium ventricle atrium valve murmur stenosis sclerosis neuropathy "
    "seizure migraine stroke aneurysm fracture ligament tendon cartilage dermatitis eczema psoriasis ulcer "
    "gastritis colitis hepatitis cirrhosis pancreatitis nephritis cystitis prostate ovary uterus placenta "
    "fetus neonate infant toddler adolescent elderly vaccine antibody antigen allergen histamine"
).split()


FROM = {"user": "human", "assistant": "gpt", "system": "system", "tool": "tool"}  # ShareGPT's names of the roles


def sentence(rnd, n):
    return " ".join(rnd.choice(VOCAB) for _ in range(n)).capitalize() + "."


def qa(rnd):
    return sentence(rnd, 14).rstrip(".") + "?", " ".join(sentence(rnd, 12) for _ in range(4))


def sharegpt(q, a, system=None):
    return {
        "conversations": ([{"from": "system", "value": system}] if system else [])
        + [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
    }


def cod_row(rnd, n):
    turns = [
        {"value": sentence(rnd, 14)},
        {
            "symptom_abstraction": [rnd.choice(VOCAB), rnd.choice(VOCAB)],
            "disease_recall": [
                {"disease": rnd.choice(VOCAB), "common_symptom": sentence(rnd, 5)},
                {"disease": rnd.choice(VOCAB), "common_symptom": None},
            ],
            "diagnostic_reasoning": sentence(rnd, 20),
            "confidence_assessment": {rnd.choice(VOCAB): 0.7},
            "decision": "diagnosis",
            "value": sentence(rnd, 8),
        },
    ]
    return {"case_id": f"en_{n}", "target_disease": rnd.choice(VOCAB), "CoD_conversations": json.dumps(turns)}


def cot_row(rnd, letter="C"):
    q = sentence(rnd, 14) + "\nOptions:\nA. x\nB. y\nC. z\nD. w"
    return {
        "system_prompt": "You are an expert medical assistant.",
        "question": q,
        "response": " ".join(sentence(rnd, 12) for _ in range(3)) + f" Answer: {letter}.",
    }


def tool_call_row(rnd, n):
    """A function-calling conversation as the General Collection's xlam/hermes sets may carry it: Hermes' `tool`
    turns (n odd) or LLaMA-Factory's `function_call` and `observation` (n even)."""
    call, result = ("gpt", "tool") if n % 2 else ("function_call", "observation")
    drug = rnd.choice(VOCAB)
    return {
        "conversations": [
            {"from": "system", "value": "You may call get_dose(drug) inside <tool_call></tool_call>."},
            {"from": "human", "value": f"What is the usual dose of {drug}? " + sentence(rnd, 8)},
            {
                "from": call,
                "value": f'<tool_call>{{"name": "get_dose", "arguments": {{"drug": "{drug}"}}}}</tool_call>',
            },
            {"from": result, "value": '{"dose": "5 mg twice a day"}'},
            {"from": "gpt", "value": "The usual dose is 5 mg twice a day. " + sentence(rnd, 10)},
        ]
    }


def relayout(unified: dict) -> dict:
    """{layout: row}: one normalized row (messages, or prompt/chosen/rejected) in each layout an authors' copy of
    unverified layout may use, every one of which normalize must read back to the same row."""
    if "messages" not in unified:
        p, c, r = unified["prompt"], unified["chosen"], unified["rejected"]
        out = {
            "preference-messages": {"prompt": p, "chosen": c, "rejected": r},
            "skywork": {"chosen": p + c, "rejected": p + r},
        }
        if [len(p), len(c), len(r)] == [1, 1, 1] and (p[0]["role"], c[0]["role"], r[0]["role"]) == (
            "user",
            "assistant",
            "assistant",
        ):
            out["preference-text"] = {"prompt": p[0]["content"], "chosen": c[0]["content"], "rejected": r[0]["content"]}
        return out
    msgs = unified["messages"]
    out = {
        "sharegpt": {"conversations": [{"from": FROM[m["role"]], "value": m["content"]} for m in msgs]},
        "messages": {"messages": msgs},
    }
    if [m["role"] for m in msgs] == ["user", "assistant"]:
        (q, a) = (m["content"] for m in msgs)
        out |= {
            "alpaca": {"instruction": q, "input": "", "output": a},
            "qa-response": {"question": q, "response": a},
            "qa-answer": {"question": q, "answer": a},
        }
    return out


def preference_row(rnd):
    q, a = qa(rnd)
    return {"prompt": q, "chosen": a, "rejected": sentence(rnd, 15)}


# One generator per registry source: (rnd, n) -> a row in the source's real columns.
ROWS = {
    "meds_ins": lambda rnd, n: sharegpt(*qa(rnd)),
    "ultramedical": lambda rnd, n: sharegpt(*qa(rnd)),
    "chain_of_diagnosis": lambda rnd, n: dict(zip(("instruction", "output"), qa(rnd)), input=""),  # its card: Alpaca
    "aloe_beta_medical_collection": lambda rnd, n: sharegpt(*qa(rnd)),
    "ultramedical_textbookqa": lambda rnd, n: {
        "id": f"TextBookQA,Anatomy_Gray_{n}",
        "type": "mc",
        **sharegpt(*qa(rnd)),
        "answer": "A",
        "score": "9",
    },
    "ultramedical_medical_instruct": lambda rnd, n: {
        "id": f"Medical-Instruct-120k,{n}",
        "type": "open",
        **sharegpt(*qa(rnd)),
        "answer": "",
        "score": "8",
    },
    "ultramedical_wikiinstruct": lambda rnd, n: {
        "id": f"WikiInstruct,{n}",
        "type": "open",
        **sharegpt(*qa(rnd)),
        "answer": "",
        "score": "8",
    },
    "cod_patient_sym_disease": cod_row,
    "medinstruct_52k": lambda rnd, n: dict(
        zip(("instruction", "output"), qa(rnd)), input="<noinput>" if n % 3 else sentence(rnd, 6)
    ),
    "medquad": lambda rnd, n: dict(zip(("Question", "Answer"), qa(rnd)), qtype="symptoms"),
    "icliniq": lambda rnd, n: {
        "input": qa(rnd)[0],
        "answer_icliniq": sentence(rnd, 20),
        "answer_chatgpt": sentence(rnd, 20),
        "answer_chatdoctor": sentence(rnd, 20),
    },
    "genmedgpt_5k": lambda rnd, n: dict(
        zip(("input", "output"), qa(rnd)), instruction="If you are a doctor, please answer the medical questions."
    ),
    "know_medical_dialogues": lambda rnd, n: dict(zip(("instruction", "output"), qa(rnd))),
    "medical_meadow_wikidoc_patient_info": lambda rnd, n: dict(zip(("instruction", "output"), qa(rnd)), input=""),
    "medtext": lambda rnd, n: dict(zip(("Prompt", "Completion"), qa(rnd))),
    "mts_dialog": lambda rnd, n: {
        "ID": n,
        "section_header": "GENHX",
        "section_text": sentence(rnd, 20),
        "dialogue": "Doctor: " + qa(rnd)[0] + "\nPatient: " + sentence(rnd, 10),
    },
    "wiki_medical_terms": lambda rnd, n: {"page_title": rnd.choice(VOCAB).capitalize(), "page_text": qa(rnd)[1]},
    "liveqa": lambda rnd, n: {
        "questionid": f"Q{n}",
        "subject": rnd.choice(VOCAB),
        "message": qa(rnd)[0],
        "focus": rnd.choice(VOCAB),
        "type": "information",
        "pairid": n,
        "answer": sentence(rnd, 25),
    },
    "medical_dialogue_to_soap_summary": lambda rnd, n: {
        "dialogue": "Doctor: " + qa(rnd)[0],
        "soap": "S: " + sentence(rnd, 20),
        "prompt": "Summarise.",
    },
    "mental_health_conversational": lambda rnd, n: {"text": "<HUMAN>: {}\n<ASSISTANT>: {}".format(*qa(rnd))},
    "mashqa": lambda rnd, n: dict(zip(("question", "answer"), qa(rnd))),
    "bioasq_b": lambda rnd, n: {
        "id": f"b{n}",
        "type": "summary",
        "body": qa(rnd)[0],
        "ideal_answer": [sentence(rnd, 20)],
    },
    "aci_bench": lambda rnd, n: {
        "dataset": "virtassist",
        "encounter_id": f"D{n}",
        "dialogue": "[doctor] " + qa(rnd)[0],
        "note": sentence(rnd, 30),
    },
    "medmcqa_cot_llama31": lambda rnd, n: cot_row(rnd),
    "medqa_cot_llama31": lambda rnd, n: cot_row(rnd),
    "pubmedqa_cot_llama31": lambda rnd, n: cot_row(rnd),
    "headqa_cot_llama31": lambda rnd, n: cot_row(rnd),
    "mmlu_medical_cot_llama31": lambda rnd, n: cot_row(rnd),
    "polymed_qa": lambda rnd, n: dict(zip(("question", "answer"), qa(rnd))),
    "aloe_beta_general_collection": lambda rnd, n: (
        tool_call_row(rnd, n)
        if n % 5 == 4
        else {
            "conversations": [
                {"from": "system", "value": "You are a helpful assistant."},
                *sharegpt(*qa(rnd))["conversations"],
                *sharegpt(*qa(rnd))["conversations"],
            ]
        }
    ),
    "aloe_beta_dpo": lambda rnd, n: preference_row(rnd),
}
EGIDA = {
    "egida_dpo_llama31_8b": "Meta-Llama-3.1-8B-Instruct",
    "egida_dpo_llama31_70b": "Meta-Llama-3.1-70B-Instruct",
    "egida_dpo_qwen25_7b": "Qwen2.5-7B-Instruct",
    "egida_dpo_qwen25_72b": "Qwen2.5-72B-Instruct",
}
ROWS.update(
    {
        name: lambda rnd, n: {
            "prompt": [{"role": "user", "content": "How do I " + sentence(rnd, 10)}],
            "chosen": [{"role": "assistant", "content": "I can't help with that. " + sentence(rnd, 6)}],
            "rejected": [{"role": "assistant", "content": sentence(rnd, 12)}],
        }
        for name in EGIDA
    }
)

# How each hub repo serves its files: repo -> [(config or None, split, path in the repo, file kind, source)].
# A repo with several configs gets a README.md `configs:` block, as on the hub.
HUB = {
    "HPAI-BSC/MedS-Ins": [(None, "train", "MedS-Ins.json", "json", "meds_ins")],
    "HPAI-BSC/ultramedical": [(None, "train", "ultramedical.json", "json", "ultramedical")],
    "HPAI-BSC/chain-of-diagnosis": [(None, "train", "chain_of_diagnosis.json", "json", "chain_of_diagnosis")],
    "HPAI-BSC/Aloe-Beta-Medical-Collection": [
        (None, "train", "medical_collection.json", "json", "aloe_beta_medical_collection")
    ],
    "TsinghuaC3I/UltraMedical": [
        (
            None,
            "train",
            "data/train-00000-of-00001.parquet",
            "parquet",
            ("ultramedical_textbookqa", "ultramedical_medical_instruct", "ultramedical_wikiinstruct"),
        )
    ],
    "FreedomIntelligence/CoD-PatientSymDisease": [
        ("en", "train", "CoD_en.json", "json", "cod_patient_sym_disease"),
        ("zh", "train", "CoD_zh.json", "json", "cod_patient_sym_disease"),
    ],
    "lavita/AlpaCare-MedInstruct-52k": [
        (None, "train", "data/train-00000-of-00001.parquet", "parquet", "medinstruct_52k")
    ],
    "keivalya/MedQuad-MedicalQnADataset": [(None, "train", "medDataset_processed.csv", "csv", "medquad")],
    "lavita/ChatDoctor-iCliniq": [(None, "train", "data/train-00000-of-00001.parquet", "parquet", "icliniq")],
    "wangrongsheng/GenMedGPT-5k-en": [(None, "train", "GenMedGPT-5k.json", "json", "genmedgpt_5k")],
    "knowrohit07/know_medical_dialogue_v2": [(None, "train", "train.json", "json", "know_medical_dialogues")],
    "medalpaca/medical_meadow_wikidoc_patient_information": [
        (None, "train", "medical_meadow_wikidoc_patient_info.json", "json", "medical_meadow_wikidoc_patient_info")
    ],
    "BI55/MedText": [(None, "train", "data/train-00000-of-00001.parquet", "parquet", "medtext")],
    "har1/MTS_Dialogue-Clinical_Note": [(None, "train", "data/train-00000-of-00001.parquet", "parquet", "mts_dialog")],
    "gamino/wiki_medical_terms": [(None, "train", "wiki_medical_terms.parquet", "parquet", "wiki_medical_terms")],
    "truehealth/liveqa": [(None, "train", "data/train-00000-of-00001.parquet", "parquet", "liveqa")],
    "omi-health/medical-dialogue-to-soap-summary": [
        (None, split, f"data/{split}-00000-of-00001.parquet", "parquet", "medical_dialogue_to_soap_summary")
        for split in ("train", "validation", "test")
    ],
    "ZahrizhalAli/mental_health_conversational_dataset": [
        (None, "train", "data/train-00000-of-00001.parquet", "parquet", "mental_health_conversational")
    ],
    "HPAI-BSC/medmcqa-cot-llama31": [(None, "train", "medmcqa_llama31_cot.json", "json", "medmcqa_cot_llama31")],
    "HPAI-BSC/medqa-cot-llama31": [(None, "train", "medqa_llama31_cot.json", "json", "medqa_cot_llama31")],
    "HPAI-BSC/pubmedqa-cot-llama31": [(None, "train", "pubmedqa_llama31_cot.json", "json", "pubmedqa_cot_llama31")],
    "HPAI-BSC/headqa-cot-llama31": [(None, "train", "headqa_llama31_cot.json", "json", "headqa_cot_llama31")],
    "HPAI-BSC/MMLU-medical-cot-llama31": [(None, "train", "mmlu_llama31_cot.json", "json", "mmlu_medical_cot_llama31")],
    "HPAI-BSC/Polymed-QA": [(None, "train", "polymed_qa.json", "json", "polymed_qa")],
    "HPAI-BSC/Aloe-Beta-General-Collection": [
        (None, "train", f"{name}.json", "json", "aloe_beta_general_collection")
        for name in ("FineTome-100k", "LongCite-45K_3")
    ],
    "HPAI-BSC/Aloe-Beta-DPO": [(None, "train", f"aloe_beta_chunk_{i}.json", "json", "aloe_beta_dpo") for i in range(5)],
    "HPAI-BSC/Egida": [
        ("Egida", "test", "Egida.json", "json", "egida_dpo_llama31_8b"),
        *((f"Egida-DPO-{m}", "train", f"Egida-DPO-{m}.json", "json", name) for name, m in EGIDA.items()),
    ],
}


def _write_file(path: Path, rows: list, kind: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "json":
        path.write_text(json.dumps(rows, indent=1))
    elif kind == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif kind == "csv":
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)


def _readme(files) -> str:
    """A dataset card; a repo with several configs declares them in its YAML header, as on the hub (a repo
    with one config has none: `datasets` infers its splits from the file names, as the hub does)."""
    configs = {}
    for config, split, path, _, _ in files:
        configs.setdefault(config, []).append(f"  - split: {split}\n    path: {path}")
    if len(configs) == 1:
        return "# offline mirror fixture\n"
    body = "".join(f"- config_name: {c}\n  data_files:\n" + "\n".join(fs) + "\n" for c, fs in configs.items())
    return f"---\nconfigs:\n{body}---\n# offline mirror fixture\n"


def build_hub(out: Path, rows_per_file: int = 6, seed: int = 0) -> Path:
    """A folder laid out like the hub, DIR/<owner>/<repo>/, for every registry source of both sets."""
    rnd, out = random.Random(seed), Path(out)
    for repo, files in HUB.items():
        for _, _, path, kind, sources in files:
            sources = sources if isinstance(sources, tuple) else (sources,)
            rows = [ROWS[src](rnd, n) for n in range(rows_per_file) for src in sources]
            _write_file(out / repo / path, rows, kind)
        (out / repo / "README.md").write_text(_readme(files))
    return out


def build(out: Path, test_question: str, seed: int = 0, dpo_pairs: int = 80, redteam_pairs: int = 16) -> list:
    """The local corpus of the default source set with planted problems; returns the planted list."""
    rnd, out = random.Random(seed), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files, planted = {}, []

    def add(source, row, expect=None, raw=None):
        lines = files.setdefault(source, [])
        lines.append(raw if raw is not None else json.dumps(row))
        if expect:
            planted.append({"source": source, "line": len(lines), **expect})
        return len(lines)

    def clean(source, k):
        for _ in range(k):
            add(source, ROWS[source](rnd, len(files.get(source, []))))

    # medical: the authors' copies (conversations of {from, value})
    clean("meds_ins", 9)
    q, a = qa(rnd)
    first = add("meds_ins", sharegpt(q, a))
    add("meds_ins", sharegpt(q, a), {"step": "dedup", "reason": "exact duplicate", "of": first})
    add("meds_ins", None, {"step": "normalize", "reason": "malformed JSON"}, raw='{"conversations": [{"from": "human"')
    add(
        "meds_ins",
        None,
        {"step": "normalize", "reason": "invalid UTF-8"},
        raw='{"conversations": [{"from": "human", "value": "caf\udcff"}]}',
    )
    add(
        "meds_ins",
        {"conversation": sharegpt(q, a)["conversations"]},
        {"step": "normalize", "reason": "missing field 'conversations'"},
    )
    add(
        "meds_ins",
        {"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": 12}]},
        {"step": "normalize", "reason": "malformed turn"},
    )
    add(
        "meds_ins",
        None,
        {"step": "normalize", "reason": "invalid Unicode"},
        raw='{"conversations": [{"from": "human", "value": "x\\ud800"}, {"from": "gpt", "value": "y"}]}',
    )
    add("meds_ins", sharegpt(sentence(rnd, 12), ""), {"step": "clean", "reason": "no answer"})
    add("meds_ins", sharegpt(sentence(rnd, 12), "Erratum"), {"step": "clean", "reason": "irrelevant answer"})
    add(
        "meds_ins",
        sharegpt(sentence(rnd, 12) + " Options: A. x B. y", "Explanation: Ans. B"),
        {"step": "clean", "change": "normalized multiple-choice answer", "expect_text": "Answer: [B]"},
    )
    add(
        "meds_ins",
        sharegpt(
            sentence(rnd, 12) + " See https://example.org/guide or write to dr.who@example.com", sentence(rnd, 20)
        ),
        {"step": "clean", "change": "url and e-mail removed"},
    )
    clean("ultramedical", 8)
    q, a = qa(rnd)
    first = add("ultramedical", sharegpt(q, a))
    add(
        "ultramedical",
        sharegpt(q, a.rsplit(" ", 1)[0] + " indeed."),
        {"step": "dedup", "reason": "near duplicate", "of": first},
    )
    add("ultramedical", {"conversations": "not a list"}, {"step": "normalize", "reason": "wrong type"})
    clean("chain_of_diagnosis", 4)  # served as one JSON array (chain_of_diagnosis.json), as the hub's .json files
    clean("aloe_beta_medical_collection", 5)
    add(
        "aloe_beta_medical_collection",
        sharegpt(f"A colleague asked me this: {test_question} What do you think?", sentence(rnd, 20)),
        {"step": "decontaminate", "reason": "8-gram overlap with a test question"},
    )
    # synthetic CoT (options inside the question) and general (multi-turn, system turn): shares 60/20/20
    clean("medmcqa_cot_llama31", 10)
    add("medqa_cot_llama31", cot_row(rnd, letter="F"), {"step": "normalize", "reason": "answer F is not among"})
    clean("aloe_beta_general_collection", 10)
    for _ in range(dpo_pairs):
        add("aloe_beta_dpo", preference_row(rnd))
    add("aloe_beta_dpo", json.loads(files["aloe_beta_dpo"][0]), {"step": "dedup", "reason": "exact duplicate", "of": 1})
    add(
        "aloe_beta_dpo",
        {"prompt": "Why?", "chosen": "Because.", "rejected": "Because."},
        {"step": "normalize", "reason": "chosen and rejected are the same"},
    )
    for name in EGIDA:
        clean(name, redteam_pairs)
    for source, lines in files.items():
        if source == "chain_of_diagnosis":
            (out / f"{source}.json").write_text("[\n" + ",\n".join(lines) + "\n]\n")
            continue
        data = ("\n".join(lines) + "\n").encode("utf-8", errors="surrogateescape")
        if source == "ultramedical":
            data = b"\xef\xbb\xbf" + data  # a byte-order mark, as some Windows-made files carry
        (out / f"{source}.jsonl").write_bytes(data)
    (out / "planted.json").write_text(json.dumps(planted, indent=2))
    return planted


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="write the local corpus here")
    ap.add_argument("--hub-dir", help="write the hub mirror here")
    ap.add_argument("--test-question", default="Which drug is first-line for asthma?")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if not (a.out or a.hub_dir):
        ap.error("give --out, --hub-dir or both")
    if a.out:
        print(f"{len(build(Path(a.out), a.test_question, a.seed))} planted rows in {a.out}")
    if a.hub_dir:
        print(f"hub mirror of {len(HUB)} repos in {build_hub(Path(a.hub_dir), seed=a.seed)}")


if __name__ == "__main__":
    main()
