"""Step f: prepend an instruction template to questions of sources that have no prompt of their own
(sources.yaml `needs_prompt`). One template per sample, drawn by a generator seeded with (seed, sample id)
from the templates of its task (data_prep/templates.yaml), with <<DATASET SUBJECT>> replaced by the
source's subject. Nothing is dropped.

  python -m data_prep.template --in pruned.jsonl --out templated.jsonl --rejects r.jsonl --report r.json [--seed 0]
"""

import random
from pathlib import Path

import yaml

from .io import Report, Writer, read_jsonl, step_args

TEMPLATES = yaml.safe_load(Path(__file__).with_name("templates.yaml").read_text())


def apply(row, seed):
    if not row.get("needs_prompt") or "messages" not in row:
        return row, False
    options = TEMPLATES["templates"].get(row["task"]) or TEMPLATES["templates"]["question_answering"]
    subject = TEMPLATES["subjects"].get(row["source"], TEMPLATES["subjects"]["default"])
    t = random.Random(f"{seed}:{row['id']}").choice(options).replace("<<DATASET SUBJECT>>", subject)
    msgs = [dict(m) for m in row["messages"]]
    first = next(i for i, m in enumerate(msgs) if m["role"] == "user")
    msgs[first]["content"] = f"{t}\n\n{msgs[first]['content']}"
    return {**row, "messages": msgs}, True


def run(inp, out, rejects, report_path, seed=0):
    rep = Report("template", rejects)
    with Writer(out) as w:
        for _, row, _ in read_jsonl(inp):
            rep.saw(row["source"])
            row, changed = apply(row, seed)
            if changed:
                rep.change(row["source"], "instruction template prepended")
            rep.route(w, row)
    return rep.close(report_path)


def main(argv=None):
    ap = step_args(__doc__)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    print(run(a.inp, a.out, a.rejects, a.report, a.seed))


if __name__ == "__main__":
    main()
