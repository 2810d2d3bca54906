"""Every reader of model and data text, on hostile text of 1 MB: well under 100 ms.

The suite's one timing assertion (parsing stays linear at 1 MB): everywhere else waits are checked
through injected clocks. A quadratic reader takes seconds to minutes on these texts (the old
code-fence pattern did not finish 1 MB in 10 minutes), so a 100 ms limit on the best of up to
three runs separates linear from quadratic with a wide margin on a loaded 2-core machine:
today's worst case is about 20 ms. Readers with a bound (the matchers read at most
``MAX_ANSWER_CHARS``, ``parse_turn`` at most ``MAX_CALLS`` bodies of ``MAX_CALL_CHARS``)
are also timed at the bound, where they do their most work.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cof_plugins.core.answers import MAX_ANSWER_CHARS
from cof_plugins.core.parser import MAX_CALL_CHARS, MAX_CALLS, parse_turn
from cof_plugins.testbed.adversarial import (
    BOUNDED,
    CASES,
    DATA_READERS,
    LIMIT_S,
    MEGABYTE,
    TARGETS,
    best_of_3,
)

# match_math is timed at 1 MB only: within its bound the time is math_verify's own (up to a
# few hundred ms on ordinary nested answers), which no bound of ours makes linear.
_MATCHERS = ("read_choice", "match_choice", "match_short")


Build = Callable[[int], str]


def slow_cases(reader: Callable[[str], object], builds: dict[str, Build], size: int) -> list[str]:
    """Cases on which ``reader`` takes the limit or more. Each case is tried at 1/64 and 1/8
    of ``size`` first, so a quadratic reader fails in seconds instead of hanging."""
    slow = []
    for name, build in builds.items():
        for part in (size // 64, size // 8, size):
            seconds = best_of_3(reader, build(part))
            if seconds >= LIMIT_S:
                slow.append(f"{name} at {part} chars: {seconds * 1000:.0f} ms")
                break
    return slow


def _exactly(build: Build) -> Build:
    return lambda size: build(size)[:size]


def test_the_cases_are_megabyte_texts():
    assert len(CASES) >= 30
    assert all(0.9 * MEGABYTE <= len(build(MEGABYTE)) <= 1.1 * MEGABYTE for build in CASES.values())


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_each_reader_is_fast_on_every_megabyte_case(target):
    assert not slow_cases(TARGETS[target], CASES, MEGABYTE)


@pytest.mark.parametrize("target", [*_MATCHERS, *BOUNDED])
def test_matchers_are_fast_at_their_bound(target):
    reader = TARGETS.get(target) or BOUNDED[target]
    builds = {name: _exactly(build) for name, build in CASES.items()}
    assert not slow_cases(reader, builds, MAX_ANSWER_CHARS)


def test_parse_turn_is_fast_at_its_bounds():
    """``MAX_CALLS`` bodies of ``MAX_CALL_CHARS`` each: the most a turn makes it parse."""

    def calls(build: Build) -> Build:
        return lambda size: f"<tool_call>{build(size)[:size]}</tool_call>" * MAX_CALLS

    builds = {name: calls(build) for name, build in CASES.items()}
    assert not slow_cases(parse_turn, builds, MAX_CALL_CHARS)


def test_the_options_splitter_is_linear():
    """Left as main wrote it (linear, ``str.find`` only) and unbounded: its constant is
    higher (it collapses every option's whitespace), so it is checked for linear growth
    at 1 MB against 250 KB (quadratic growth is 16x) unless it is under the limit anyway."""
    split = DATA_READERS["split_options"]
    for name in ("letters", "option-lines", "spaces", "parens"):
        small, large = CASES[name](MEGABYTE // 4), CASES[name](MEGABYTE)
        large_s = best_of_3(split, large, 0)
        ratio = large_s / max(best_of_3(split, small, 0), 1e-4)
        assert large_s < LIMIT_S or ratio < 10, f"{name}: 4x the text took {ratio:.1f}x the time"
