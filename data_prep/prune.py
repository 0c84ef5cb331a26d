"""Step e: quality pruning with DEITA scores (P-BETA §4.1.1): drop the bottom 10% by evol score
(quality x complexity), and samples that could not be scored.

Scores come from a pluggable scorer, `module:function` taking a row and returning (quality, complexity)
or None. The default, `data_prep.prune:precomputed`, reads `meta.deita_quality` and
`meta.deita_complexity` (as written by the DEITA scorers, hkust-nlp/deita-quality-scorer and
deita-complexity-scorer, which need a GPU). When no sample has a score the step passes everything
through and says so in its report. Two passes: scores and the cut-off first, then the filter.

  python -m data_prep.prune --in decon.jsonl --out pruned.jsonl --rejects r.jsonl --report r.json [--scorer m:f]
"""

import importlib

import numpy as np

from .io import Report, Writer, read_jsonl, step_args

FRACTION = 0.10


def precomputed(row):
    meta = row.get("meta") or {}
    q, c = meta.get("deita_quality"), meta.get("deita_complexity")
    return (float(q), float(c)) if q is not None and c is not None else None


def load_scorer(spec: str):
    module, fn = spec.split(":")
    return getattr(importlib.import_module(module), fn)


def run(inp, out, rejects, report_path, scorer="data_prep.prune:precomputed", fraction=FRACTION):
    score = load_scorer(scorer)
    evol = [None if (s := score(row)) is None else s[0] * s[1] for _, row, _ in read_jsonl(inp)]
    scored = np.array([e for e in evol if e is not None])
    active = len(scored) > 0
    cutoff = float(np.quantile(scored, fraction)) if active else None
    rep = Report("prune", rejects)
    with Writer(out) as w:
        for i, (_, row, _) in enumerate(read_jsonl(inp)):
            rep.saw(row["source"])
            reason = None
            if active and evol[i] is None:
                reason = "no DEITA score"
            elif active and evol[i] < cutoff:
                reason = f"bottom {int(100 * fraction)}% DEITA evol score"
            rep.route(w, row, reason, evol=evol[i], cutoff=cutoff)
    result = rep.close(report_path)
    result["note"] = f"cut-off evol score {cutoff:.4g}" if active else "no sample carries DEITA scores: nothing pruned"
    return result


def main(argv=None):
    ap = step_args(__doc__)
    ap.add_argument("--scorer", default="data_prep.prune:precomputed")
    ap.add_argument("--fraction", type=float, default=FRACTION)
    a = ap.parse_args(argv)
    print(run(a.inp, a.out, a.rejects, a.report, a.scorer, a.fraction))


if __name__ == "__main__":
    main()
