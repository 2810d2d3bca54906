"""Time every reader of model and data text on hostile text of 1 MB (and at its bound).

    python bench/parsing.py [--size 1000000]

For each reader of ``cof_plugins.testbed.adversarial.TARGETS`` (tool-call parser, answer
matchers, response splitter, judge-reply parser, SFT layout and Mini-o3 readers) and each
hostile case (whitespace runs, many openers, deep nesting, long digit strings, tag soup),
the best of three runs; printed: the slowest case and the median over cases. The matchers
read at most ``MAX_ANSWER_CHARS`` and ``parse_turn`` at most ``MAX_CALLS`` bodies of
``MAX_CALL_CHARS``, so they are also timed on texts exactly at those bounds, where they do
their most work. ``tests/fuzz/test_linear_time.py`` holds every figure under 100 ms.

There is no reference implementation to compare with: the readers this replaced were
quadratic or cubic on these texts (answer matching took 25 s on 1,200 spaces inside
``<answer>``; the code-fence pattern did not finish 1 MB in 10 minutes; figures from
an earlier hostile-input pass, not measured here).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

try:
    from cof_plugins.testbed.adversarial import BOUNDED, CASES, MEGABYTE, TARGETS, best_of_3
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from cof_plugins.testbed.adversarial import BOUNDED, CASES, MEGABYTE, TARGETS, best_of_3

from cof_plugins.core.answers import MAX_ANSWER_CHARS
from cof_plugins.core.parser import MAX_CALL_CHARS, MAX_CALLS, parse_turn


def row(label: str, reader: Callable[[str], object], texts: dict[str, str]) -> None:
    timings = {name: best_of_3(reader, text, enough=0) for name, text in texts.items()}
    worst = max(timings, key=timings.__getitem__)
    median = statistics.median(timings.values())
    print(
        f"{label:34s} worst {timings[worst] * 1000:7.1f} ms ({worst}), "
        f"median {median * 1000:6.2f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=MEGABYTE, help="characters per text")
    args = parser.parse_args(argv)
    if args.size <= 0:
        parser.error("--size must be > 0")
    texts = {name: build(args.size) for name, build in CASES.items()}
    print(f"{len(CASES)} hostile cases of {args.size:,} characters; best of 3 runs each")
    for name, reader in TARGETS.items():
        row(name, reader, texts)
    bound = {name: build(MAX_ANSWER_CHARS)[:MAX_ANSWER_CHARS] for name, build in CASES.items()}
    for name in ("read_choice", "match_choice", "match_short", "match_math"):
        row(f"{name} at {MAX_ANSWER_CHARS} chars", TARGETS[name], bound)
    for name, reader in BOUNDED.items():
        row(f"{name} at {MAX_ANSWER_CHARS} chars", reader, bound)
    calls = {
        name: f"<tool_call>{build(MAX_CALL_CHARS)[:MAX_CALL_CHARS]}</tool_call>" * MAX_CALLS
        for name, build in CASES.items()
    }
    row(f"parse_turn, {MAX_CALLS} calls of {MAX_CALL_CHARS}", parse_turn, calls)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
