"""Choice shuffling: each ensemble member sees the options in its own order.

Permutations are drawn from a generator seeded by (seed, question id), so they do not depend on thread
or batch order (prompt_engine draws them from the global `random` in a thread pool). The first
min(N, n_options!) members get distinct permutations; beyond that they repeat in the same order.
"""

import itertools
import random

LETTERS = "ABCDEFGHIJ"


def permutations(n_options: int, n_members: int, seed: int, qid: str, shuffle: bool = True) -> list:
    """n_members permutations of range(n_options); perm[i] = original index of the option shown at i."""
    if not shuffle:
        return [tuple(range(n_options))] * n_members
    everything = list(itertools.permutations(range(n_options)))
    rnd = random.Random(f"{seed}:{qid}")
    rnd.shuffle(everything)
    return [everything[i % len(everything)] for i in range(n_members)]


def shown(options: list, perm) -> list:
    """The option texts in the order this member sees them."""
    return [options[i] for i in perm]


def to_original(letter: str | None, perm) -> str | None:
    """Map a letter the member answered (in its shown order) back to the original option letter."""
    if letter is None:
        return None
    return LETTERS[perm[LETTERS.index(letter)]]
