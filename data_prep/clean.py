"""Step b: clean text and drop what cannot train (P-BETA §4.1.1, App. B).

Every message: URLs and e-mail addresses removed, control and unusual characters removed, whitespace
collapsed. Dropped, with the reason: a sample without a question or an answer; a question or answer
from the paper's lists of irrelevant ones (Tables B5-B6; the examples printed in the paper). Changed and
counted: malformed multiple-choice answers ("Explanation: Ans. B", "Ans: (b)") become "Answer: [B]".
Preference rows are cleaned the same way in prompt, chosen and rejected.

  python -m data_prep.clean --in normalized.jsonl --out clean.jsonl --rejects r.jsonl --report r.json
"""

import json
import re

from .io import Report, Writer, parallel_map, step_main

URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
ODD = re.compile(r"[^\w\s.,;:!?'\"()\[\]{}<>/\\%&*+=#@$^~`|°±µ·×÷’‘“”–—-]")
SPACES = re.compile(r"[ \t\u00a0]+")
BLANKS = re.compile(r"\n{3,}")
# The irrelevant questions and answers printed in P-BETA Tables B5-B6 (the full lists are not published as text).
IRRELEVANT_QUESTIONS = {"no abstract available.", "[figure: see text]", "[see text]", "no abstract"}
IRRELEVANT_ANSWERS = {"erratum", "none", "unremarkable.", "n/a", "[figure: see text]", "not applicable"}
MC_ANSWER = re.compile(
    r"^\s*(?:explanation:\s*)?(?:ans(?:wer)?\.?\s*(?:is)?\s*[:.]?\s*)\(?\[?([A-Ea-e])\]?\)?[.)]?\s*$",
    re.IGNORECASE | re.DOTALL,
)


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_text(s: str) -> str:
    low = s.lower()
    if "http" in low or "www." in low:  # fast paths: most text has no URL, e-mail or non-ASCII character
        s = URL.sub("", s)
    if "@" in s:
        s = EMAIL.sub("", s)
    s = CONTROL.sub("", s) if s.isascii() else ODD.sub("", s)
    s = SPACES.sub(" ", s)
    s = "\n".join(line.strip() for line in s.split("\n"))
    return BLANKS.sub("\n\n", s).strip()


def normalize_mc_answer(s: str) -> str | None:
    """ "Answer: [X]" for an answer that is only a malformed option letter, else None."""
    m = MC_ANSWER.match(s)
    fixed = f"Answer: [{m.group(1).upper()}]" if m else None
    return fixed if fixed != s.strip() else None


def _clean_msgs(msgs):
    return [{**m, "content": clean_text(m["content"])} for m in msgs]


def clean_row(row: dict):
    """(cleaned row, None, changes) or (None, reason, changes)."""
    changes = []
    if "messages" in row:
        msgs = _clean_msgs(row["messages"])
        user = [m["content"] for m in msgs if m["role"] == "user"]
        answers = [m for m in msgs if m["role"] == "assistant"]
        if not user or not any(user):
            return None, "no question", changes
        if not answers or not all(m["content"] for m in answers):
            return None, "no answer", changes
        if user[0].lower() in IRRELEVANT_QUESTIONS:
            return None, "irrelevant question", changes
        if answers[-1]["content"].lower() in IRRELEVANT_ANSWERS:
            return None, "irrelevant answer", changes
        for m in answers:
            fixed = normalize_mc_answer(m["content"])
            if fixed:
                m["content"] = fixed
                changes.append("normalized multiple-choice answer")
        return {**row, "messages": msgs}, None, changes
    parts = {k: _clean_msgs(row[k]) for k in ("prompt", "chosen", "rejected")}
    if not any(m["content"] for m in parts["prompt"]):
        return None, "no question", changes
    if not all(any(m["content"] for m in parts[k]) for k in ("chosen", "rejected")):
        return None, "no answer", changes
    return {**row, **parts}, None, changes


def _clean_line(line):
    row = json.loads(line)  # this step reads normalize's output: valid JSON by construction
    return row, clean_row(row)


def run(inp, out, rejects, report_path):
    rep = Report("clean", rejects)
    with Writer(out) as w, open(inp) as lines:
        for row, (cleaned, reason, changes) in parallel_map(_clean_line, lines):
            rep.saw(row["source"])
            for c in changes:
                rep.change(row["source"], c)
            rep.route(w, cleaned or row, reason)
    return rep.close(report_path)


def main(argv=None):
    step_main(__doc__, run, argv)


if __name__ == "__main__":
    main()
