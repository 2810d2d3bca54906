"""Option shuffling: seeded orders, the answer letter follows its option, reported per order."""

from __future__ import annotations

import json
import string

import pytest
from eval_support import FakeBackend, answer, write_jsonl

from cof_plugins.eval.benchmarks import Sample
from cof_plugins.eval.images import ImageRef
from cof_plugins.eval.loop import LoopConfig
from cof_plugins.eval.runner import EvalSpec, run_eval, work_items
from cof_plugins.eval.shuffle import apply_order, option_orders, original_letter

SAMPLE = Sample(id="q7", image=ImageRef("path", "x.png"), question="Which?",
                answer="C", options=("red", "blue", "green", "white"))  # fmt: skip


def test_orders_start_with_the_original_and_are_seeded_and_distinct():
    orders = option_orders(SAMPLE, 3, seed=0)
    assert orders[0] == (0, 1, 2, 3) and len(set(orders)) == 4
    assert orders == option_orders(SAMPLE, 3, seed=0)
    assert orders != option_orders(SAMPLE, 3, seed=1)
    two = Sample(id="q", image=SAMPLE.image, question="?", answer="A", options=("x", "y"))
    assert option_orders(two, 5, seed=0) == [(0, 1), (1, 0)]  # only one distinct shuffle
    open_q = Sample(id="o", image=SAMPLE.image, question="?", answer="a sign", kind="open")
    assert option_orders(open_q, 3, seed=0) == [()]


@pytest.mark.parametrize("perm", [(2, 0, 3, 1), (3, 2, 1, 0), (0, 1, 2, 3), (1, 2, 0, 3)])
def test_the_answer_letter_follows_its_option(perm):
    shown = apply_order(SAMPLE, perm)
    letters = string.ascii_uppercase
    assert shown.options[letters.index(shown.answer)] == "green"
    assert sorted(shown.options) == sorted(SAMPLE.options)
    assert original_letter(shown.answer, perm) == "C"
    assert shown.group == SAMPLE.group and shown.id == SAMPLE.id


def by_text(request, turn):
    """A reader that finds the right colour's text and answers its letter as shown."""
    text = request.messages[1]["content"]
    truth = next(t for q, t in TRUTH.items() if q in text)
    return answer(next(letter for letter in "ABCD" if f"({letter}) {truth}\n" in text))


def first_letter(request, turn):
    """A position-biased model: always the first option."""
    return answer("A")


TRUTH: dict[str, str] = {}  # question -> the right option's text


@pytest.fixture
def data(tmp_path, synth_samples):
    samples = [s for s in synth_samples if s.options and len(s.options) >= 3][:4]
    TRUTH.clear()
    TRUTH.update({s.question: s.options[string.ascii_uppercase.index(s.answer)] for s in samples})
    return write_jsonl(tmp_path / "set.jsonl", samples), len(samples)


def _spec(data, synth_dir, shuffles):
    return EvalSpec(benchmark=str(data), model="fake", image_root=str(synth_dir), judge=False,
                    loop=LoopConfig(batch_size=4), shuffle_options=shuffles)  # fmt: skip


def test_reading_the_options_is_immune_to_order(tmp_path, data, synth_dir):
    path, n = data
    summary = run_eval(_spec(path, synth_dir, 2), tmp_path / "run",
                       backend=FakeBackend(by_text), progress=False)  # fmt: skip
    orders = summary["option_orders"]
    assert orders["orders"] == 3 and orders["all_orders"]["n"] == 3 * n
    assert orders["shuffled"]["accuracy"] == orders["original"]["accuracy"] == 100.0
    assert orders["changed"] == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").open()]
    shuffled = [r for r in records if r["order"]]
    assert all(r["key"].endswith(f"~o{r['order']}") and r["permutation"] for r in shuffled)
    assert len({r["key"] for r in records}) == 3 * n
    # Some shuffle moved the answer, and the stored answer moved with it.
    assert any(r["answer"] != next(o for o in records if o["id"] == r["id"])["answer"]
               for r in shuffled)  # fmt: skip


def test_position_bias_shows_up(tmp_path, data, synth_dir):
    path, n = data
    summary = run_eval(_spec(path, synth_dir, 3), tmp_path / "run",
                       backend=FakeBackend(first_letter), progress=False)  # fmt: skip
    orders = summary["option_orders"]
    original = orders["original"]["accuracy"]
    records = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").open()]
    expected = 100.0 * sum(r["answer"] == "A" for r in records if not r["order"]) / n
    assert original == expected == summary["overall"]["accuracy"]
    assert orders["changed"] >= 1 and orders["consistent"] < 100


def test_work_is_question_by_question_and_resumable(tmp_path, data, synth_dir):
    path, _ = data
    spec = _spec(path, synth_dir, 1)
    from cof_plugins.eval.benchmarks import load_benchmark

    samples = load_benchmark(path, image_root=synth_dir).samples
    items = work_items(samples, spec)
    assert [i.sample.id for i in items[:2]] == [samples[0].id] * 2
    assert [i.order for i in items[:2]] == [0, 1]
    first = run_eval(spec, tmp_path / "run", backend=FakeBackend(by_text), progress=False)
    again = run_eval(spec, tmp_path / "run", backend=FakeBackend(by_text), progress=False)
    assert first["option_orders"] == again["option_orders"]
