"""The rules on the phrasing corpus: no wrong verdict, and at least 95% of answers settled."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from cof_plugins.core.options import LETTERS
from cof_plugins.testbed.phrasings import CORPUS, load_phrasings, rules_coverage

COVERAGE_FLOOR = 0.95


@pytest.fixture(scope="module")
def phrasings():
    return load_phrasings()


def test_the_corpus_is_large_varied_and_well_formed(phrasings):
    assert len(phrasings) >= 200
    assert len({p.id for p in phrasings}) == len(phrasings)
    shapes = Counter(p.shape for p in phrasings)
    assert len(shapes) >= 30 and max(shapes.values()) < len(phrasings) / 5
    verdicts = Counter(p.verdict for p in phrasings)
    assert verdicts[True] > 100 and verdicts[False] > 50 and verdicts[None] > 30
    for p in phrasings:
        assert p.gold in LETTERS[: len(p.options)], p.id


def test_no_wrong_verdict(phrasings):
    """An ambiguous answer stays undecided; a settled one is settled right."""
    cover = rules_coverage(phrasings)
    wrong = [f"{p.id}: {p.answer!r} -> {got}, should be {p.verdict}" for p, got in cover.wrong]
    assert not wrong, "\n".join(wrong)


def test_rules_settle_at_least_95_percent(phrasings):
    cover = rules_coverage(phrasings)
    missed = "\n".join(f"{p.id}: {p.answer!r}" for p in cover.unsettled)
    assert cover.share >= COVERAGE_FLOOR, f"{cover.share:.1%} settled; unsettled:\n{missed}"


def test_the_second_batch_holds_the_floor_too(phrasings):
    """Entries written after the rules, which the rules were not tuned on."""
    cover = rules_coverage([p for p in phrasings if p.batch == "second"])
    assert cover.entries >= 50 and not cover.wrong and cover.share >= COVERAGE_FLOOR


def test_a_malformed_line_names_the_file_and_line(tmp_path):
    good = CORPUS.read_text(encoding="utf-8").splitlines()[0]
    path = tmp_path / "c.jsonl"
    path.write_text(good + "\n" + json.dumps({"id": "x"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"c\.jsonl:2: missing batch"):
        load_phrasings(path)
