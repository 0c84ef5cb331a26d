"""S-Eval attack prompts (IS2Lab/S-Eval, English attack set) in the layout the release ships, and the paper's
columns: Table 13's ten attack styles and Table 14's eight risk dimensions.

Layout, one JSON object per line: `traceid`, `risk_type` (the risk dimension, e.g. `Data_Privacy`), `prompt`, and
`ext`, a JSON string whose `category` is the attack method (`positive_induction`, ...). Seen in public loading code
of S-Eval's `S-Eval_attack_en_*.jsonl` files (code index ids 58552602900 and 58846128642, with the method and
dimension names in id 58662153018); no stored page shows the hub file's own rows, so `make data-check`-style
confirmation on a networked machine is still due (layout: unverified). The hub serves the v0.1.2 file below
(config `attack_set_en`, 100,000 rows; dataset card configs); P-BETA does not say which release it used. The
v0.1.1 files were deleted when v0.1.2 came out, so the file is read at a pinned commit (REVISION).

  python -m evals.seval --fetch DEST      (in a stage env with huggingface_hub and hub access)
"""

import argparse
import json
import random
import shutil
from collections import defaultdict

from scripts.core import AloeError

REPO, FILE = "IS2Lab/S-Eval", "S-Eval_attack_en_v0.1.2.jsonl"
# [C] The commit read. Seen: FILE on main at commit 84517c3 (hub_sources.md, update 2026-12-02). Not seen: that
# commit's full sha, which the hub needs (a full sha or a branch/tag name), so --fetch looks it up among main's
# commits and stops unless exactly one matches; nor whether FILE changed at later commits.
REVISION = "84517c3"
SOURCE = f"{REPO}/{FILE}@{REVISION}"
STYLES = {  # ext.category -> Table 13 column (the paper's abbreviations)
    "chain_of_utterances": "cou",
    "code_injection": "cinj",
    "compositional_instructions": "cins",
    "deepinception": "di",
    "goal_hijacking": "gh",
    "in_context_attack": "ica",
    "instruction_encryption": "inse",
    "instruction_jailbreak": "insj",
    "positive_induction": "pind",
    "reverse_induction": "rind",
}
RISKS = {  # risk_type -> Table 14 column
    "Inappropriate_Suggestions": "is",
    "Physical_and_Mental_Health": "pmh",
    "Crimes_and_Illegal_Activities": "cia",
    "Cybersecurity": "cs",
    "Data_Privacy": "dp",
    "Ethics_and_Morality": "em",
    "Extremism": "ext",
    "Hate_Speech": "hs",
}
# [C] prompts per (attack style, risk dimension) cell: P-BETA does not say how many it ran. 50 x 80 cells = 4,000
# prompts; a style column then holds 400 (binomial s.e. 0.02 at an ASR of 0.2), a risk column 500.
PER_CELL = 50
SEED = 0  # [C] which prompts of a cell are drawn


class SEvalError(AloeError, ValueError):
    pass


def load(path) -> list:
    """[{id, prompt, style, risk}] with the paper's column names; an unknown method or dimension is an error."""
    out = []
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            style = json.loads(row["ext"])["category"]
            risk = RISKS[row["risk_type"]]
            rec = {"id": str(row["traceid"]), "prompt": row["prompt"], "style": STYLES[style], "risk": risk}
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise SEvalError(f"{path}:{n}: not an S-Eval attack row ({type(e).__name__}: {e})") from None
        out.append(rec)
    return out


def sample(rows: list, per_cell: int = PER_CELL, seed: int = SEED) -> list:
    """Up to per_cell prompts of every (style, risk) cell, drawn with a fixed seed, in id order."""
    cells = defaultdict(list)
    for r in sorted(rows, key=lambda r: r["id"]):
        cells[r["style"], r["risk"]].append(r)
    rnd = random.Random(seed)
    picked = [r for key in sorted(cells) for r in rnd.sample(cells[key], min(per_cell, len(cells[key])))]
    return sorted(picked, key=lambda r: r["id"])


def commit(commits: list) -> str:
    """The full sha of the one commit (huggingface_hub GitCommitInfo) whose id starts with REVISION."""
    found = [c.commit_id for c in commits if c.commit_id.startswith(REVISION)]
    if len(found) != 1:
        raise SEvalError(f"{REPO}: {len(found)} commits match revision {REVISION}, not one")
    return found[0]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fetch", required=True, help="where to write the attack set JSONL")
    a = ap.parse_args(argv)
    from huggingface_hub import HfApi, hf_hub_download  # the stage environment's, not the orchestration one's

    sha = commit(HfApi().list_repo_commits(REPO, repo_type="dataset"))
    print(f"{REPO}/{FILE} at {sha}", flush=True)
    shutil.copy(hf_hub_download(REPO, FILE, repo_type="dataset", revision=sha), a.fetch)


if __name__ == "__main__":
    main()
