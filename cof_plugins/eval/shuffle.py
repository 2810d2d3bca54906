"""Option orders: the same multiple-choice question with its options shuffled, seeded.

A model that prefers a position ("always A") or reads the option list differently scores
differently when the options move; benchmarks with fixed orders hide that. ``cof eval
--shuffle-options N`` evaluates each multiple-choice question under its original order
(order 0, always one of the runs) and N shuffled ones. The answer letter follows its option:
if the right option moves from position B to position D, the expected letter is D.

Shuffles are seeded per (run seed, question id, order), so a resumed run and a rerun see the
same orders, and two runs with the same seed see the same orders (a paired comparison).
A question has at most (options)! - 1 distinct shuffles; asking for more gives it fewer.
"""

from __future__ import annotations

import math
import random
import string
from dataclasses import replace

from cof_plugins.eval.benchmarks import Sample
from cof_plugins.eval.seeds import derive_seed

# Give up looking for a new distinct shuffle after this many draws (small option counts).
_TRIES = 64


def option_orders(sample: Sample, shuffles: int, seed: int) -> list[tuple[int, ...]]:
    """The original order, then up to ``shuffles`` distinct seeded permutations.

    A permutation lists, for each position shown, the index of the original option there.
    Questions without options have only their original order.
    """
    if not sample.options or shuffles <= 0:
        return [tuple(range(len(sample.options or ())))]
    n = len(sample.options)
    identity = tuple(range(n))
    orders, seen = [identity], {identity}
    wanted = min(shuffles, math.factorial(n) - 1)
    for order in range(1, shuffles + 1):
        if len(orders) > wanted:
            break
        rng = random.Random(derive_seed(seed, "options", sample.id, order))
        for _ in range(_TRIES):
            perm = list(identity)
            rng.shuffle(perm)
            if tuple(perm) not in seen:
                break
        else:
            continue
        orders.append(tuple(perm))
        seen.add(tuple(perm))
    return orders


def apply_order(sample: Sample, permutation: tuple[int, ...]) -> Sample:
    """``sample`` with its options shown in ``permutation``'s order and the letter moved."""
    if not sample.options or permutation == tuple(range(len(sample.options))):
        return sample
    if sorted(permutation) != list(range(len(sample.options))):
        raise ValueError(f"{permutation} is not a permutation of {len(sample.options)} options")
    options = tuple(sample.options[i] for i in permutation)
    letters = string.ascii_uppercase
    original = letters.index(sample.answer)
    return replace(sample, options=options, answer=letters[permutation.index(original)])


def original_letter(letter: str | None, permutation: tuple[int, ...] | None) -> str | None:
    """The letter a shown letter had in the original order (None stays None)."""
    if letter is None or not permutation or letter not in string.ascii_uppercase:
        return letter
    index = string.ascii_uppercase.index(letter)
    return string.ascii_uppercase[permutation[index]] if index < len(permutation) else letter
