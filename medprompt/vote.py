"""Majority vote over ensemble members, and when an adaptive ensemble can stop early.

Tie rule: among options with the same number of votes, the one that received its first vote earliest
(lowest member index) wins, so the outcome never depends on dictionary order. Unparsed members (None)
do not vote; a question with no parsed member gets no answer and counts as wrong.
"""

from dataclasses import dataclass


@dataclass
class Vote:
    answer: str | None
    counts: dict
    draw: bool  # the winner was decided by the tie rule
    voters: int  # members whose answer parsed


def majority(answers: list) -> Vote:
    counts, first = {}, {}
    for i, a in enumerate(answers):
        if a is None:
            continue
        counts[a] = counts.get(a, 0) + 1
        first.setdefault(a, i)
    if not counts:
        return Vote(None, {}, False, 0)
    top = max(counts.values())
    leaders = sorted((o for o, c in counts.items() if c == top), key=first.get)
    return Vote(leaders[0], counts, len(leaders) > 1, sum(counts.values()))


def settled(answers: list, remaining: int) -> bool:
    """True when no way of casting the `remaining` votes can change the winner of the full vote.

    The worst case for the leader is that every remaining vote goes to one rival. A rival that already
    has votes must stay strictly behind, or tie and lose the tie (its first vote came later); a rival
    with no vote yet would cast its first vote after the leader's, so the leader wins a tie with it.
    """
    v = majority(answers)
    if v.answer is None:
        return remaining == 0
    lead, first = v.counts[v.answer], {a: answers.index(a) for a in v.counts}
    for rival, c in v.counts.items():
        if rival == v.answer:
            continue
        gap = lead - c
        if gap < remaining or (gap == remaining and first[rival] < first[v.answer]):
            return False
    return lead >= remaining
