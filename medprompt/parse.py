"""Answer extraction from a chain-of-thought completion.

Looks, in order: the last "Answer:" marker (as the prompt asks, "Answer: [X]"), then phrases such as
"the answer is (b)" or "correct option is B". Within the chosen span a bracketed letter wins over a bare
one; if several letters remain, the last one written counts (the model's final word). Letters outside
the question's options are ignored. Returns None when nothing parses.
"""

import re

_MARKER = re.compile(r"answer\s*(?:is)?\s*:", re.IGNORECASE)
_PHRASE = re.compile(
    r"(?:answer|option|choice)\s+(?:is|would be|:)\s*(?:option\s+)?[\[(]?\s*([A-J])\b[\])]?", re.IGNORECASE
)


def _letters(span: str, valid: str):
    bracketed = re.findall(r"[\[(]\s*([A-Ja-j])\s*[\])]", span)
    bare = re.findall(r"(?<![A-Za-z])([A-J])(?![A-Za-z])", span)
    for group in (bracketed, bare):
        hits = [x.upper() for x in group if x.upper() in valid]
        if hits:
            return hits[-1]
    return None


def parse_answer(text: str, n_options: int) -> str | None:
    valid = "ABCDEFGHIJ"[:n_options]
    marks = list(_MARKER.finditer(text))
    if marks:
        span = text[marks[-1].end() :].strip()
        span = span.split("\n")[0][:40]  # the letter follows the marker; trailing prose is ignored
        hit = _letters(span, valid)
        if hit:
            return hit
    phrases = [m.group(1).upper() for m in _PHRASE.finditer(text) if m.group(1).upper() in valid]
    return phrases[-1] if phrases else None
