"""Adaptive rates split by legibility (``eval.adaptive``), end to end on a V*-layout set.

The scenes are the quickstart's (some large targets), legibility comes from ``cof data
synthesize`` over them, and scripted models (a fake backend, the real loop and zoom step)
behave in known ways, so every rate has a value computed by hand.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from eval_support import FakeBackend, answer, zoom_call
from PIL import Image

from cof_plugins.core.frame import frame_size, get_family
from cof_plugins.core.zoom_step import make_frame
from cof_plugins.data.policy import PolicyConfig, to_frame
from cof_plugins.data.synthesize import SynthConfig, synthesize
from cof_plugins.eval.adaptive import (
    LegibilityError,
    load_legibility,
    rates,
    shows_targets,
)
from cof_plugins.eval.loop import LoopConfig
from cof_plugins.eval.runner import EvalSpec, run_eval
from cof_plugins.testbed.synth import read_dataset, write_dataset, write_vstar_layout
from cof_plugins.testbed.tiny_model import TINY_BUDGET

LEGIBLE_SIDE = 13.0
BUDGET = {"min_pixels": TINY_BUDGET.min_pixels, "max_pixels": TINY_BUDGET.max_pixels}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """12 quickstart-style scenes, their V* file, and the synthesizer's legibility file."""
    root = tmp_path_factory.mktemp("adaptive")
    ann = write_dataset(
        root / "vstar", 12, (224, 672, 1024), seed=1, progress=False, large_targets=0.5
    )
    test = write_vstar_layout(ann)
    cfg = SynthConfig(budget=TINY_BUDGET, policy=PolicyConfig(legible_side=LEGIBLE_SIDE))
    result = synthesize(ann, root / "policy", cfg, progress=False)
    assert not result.errors
    return root, read_dataset(ann), test, result.path


def _frame_key(image) -> str:
    return hashlib.sha256(np.asarray(image.convert("RGB")).tobytes()).hexdigest()


def _scripted(root, samples, policy, loop: LoopConfig):
    """A backend whose turn-0 reply is ``policy(sample, targets_box, frame)``; then it answers."""
    by_frame = {}
    for s in samples:
        with Image.open(root / "vstar" / s.image) as img:
            frame = make_frame(img.convert("RGB"), loop.family, loop.budget, loop.profile)
        boxes = [to_frame(b, (s.width, s.height), frame.size) for b in [s.bbox, *s.extra_boxes]]
        box = [  # the union of the targets, as the synthesizer's zoom frames them
            min(round(b[0]) for b in boxes), min(round(b[1]) for b in boxes),
            max(round(b[2]) for b in boxes), max(round(b[3]) for b in boxes),
        ]  # fmt: skip
        by_frame[_frame_key(frame)] = (s, box, frame.size)

    def reply(request, turn):
        sample, box, frame = by_frame[_frame_key(request.images[0])]
        return policy(sample, box, frame) if turn == 0 else answer(sample.answer)

    return FakeBackend(reply)


def _run(scenes, tmp_path, policy, name="run", **loop_kw):
    root, samples, test, _ = scenes
    # exact frames: the scripted backend recognises each sample by its frame's pixels
    loop = LoopConfig(batch_size=4, exact_frames=True, **{**BUDGET, **loop_kw})
    spec = EvalSpec(benchmark=str(test), model=name, loop=loop, judge=False)
    run_eval(spec, tmp_path / name, backend=_scripted(root, samples, policy, loop), progress=False)
    return [json.loads(line) for line in (tmp_path / name / "results.jsonl").open()]


def _adaptive(legible_ids):
    def policy(sample, box, frame):
        return answer(sample.answer) if sample.id in legible_ids else zoom_call(box)

    return policy


def test_legibility_is_the_synthesizers_own_decision(scenes):
    """meta.legible agrees with the trajectory written (direct iff legible) and with the
    target's frame size computed here from the scene, so data and eval cannot disagree."""
    _root, samples, _, path = scenes
    rows = {r["meta"]["id"]: r for r in json.loads(path.read_text())}
    questions = load_legibility(path)
    spec = get_family("qwen2_5_vl")
    for s in samples:
        frame = frame_size((s.width, s.height), spec, TINY_BUDGET)
        boxes = [to_frame(b, (s.width, s.height), frame) for b in [s.bbox, *s.extra_boxes]]
        side = min(min(b[2] - b[0], b[3] - b[1]) for b in boxes)
        assert questions[s.id].legible is (side >= LEGIBLE_SIDE)
        assert questions[s.id].legible is (rows[s.id]["meta"]["zooms"] == 0)
        assert questions[s.id].frame == frame
    legible = sum(q.legible for q in questions.values())
    assert 0 < legible < len(questions)  # both kinds present, or the split tests nothing


def test_an_adaptive_model_scores_full_marks(scenes, tmp_path):
    _, _, _, path = scenes
    questions = load_legibility(path)
    legible = {q for q, v in questions.items() if v.legible}
    out = rates(_run(scenes, tmp_path, _adaptive(legible)), questions)
    assert (out["legible"], out["illegible"]) == (len(legible), len(questions) - len(legible))
    assert out["zoom_illegible"] == out["direct_legible"] == out["target_in_crop"] == 100.0
    assert out["zoom_legible"] == out["direct_illegible"] == 0.0
    assert out["invalid_calls"] == 0 and out["format_ok"] == out["accuracy"] == 100.0


def test_always_zooming_is_not_answering_directly(scenes, tmp_path):
    _, _, _, path = scenes
    questions = load_legibility(path)
    out = rates(_run(scenes, tmp_path, lambda s, box, f: zoom_call(box)), questions)
    assert out["zoom_illegible"] == 100.0 and out["zoom_legible"] == 100.0
    assert out["direct_legible"] == 0.0


def test_bad_boxes_are_attempts_not_zooms(scenes, tmp_path):
    """x1 > x2: the call is refused, counts as invalid, and is neither a zoom nor direct."""
    _, _, _, path = scenes
    questions = load_legibility(path)
    out = rates(
        _run(scenes, tmp_path, lambda s, b, f: zoom_call([b[2], b[1], b[0], b[3]])), questions
    )
    assert out["zoom_illegible"] == out["zoom_legible"] == 0.0
    assert out["direct_legible"] == out["direct_illegible"] == 0.0
    assert out["invalid_calls"] == 1.0 and out["target_in_crop"] is None


def test_a_zoom_elsewhere_is_valid_but_misses(scenes, tmp_path):
    """A valid box in the corner away from the target: a valid zoom, not a target hit."""
    _, _samples, _, path = scenes
    questions = load_legibility(path)

    def corner(sample, box, frame):
        far_right = box[0] < frame[0] / 2
        return zoom_call([frame[0] - 30, 0, frame[0], 30] if far_right else [0, 0, 30, 30])

    records = _run(scenes, tmp_path, corner)
    out = rates(records, questions)
    assert out["zoom_illegible"] == 100.0
    hits = [shows_targets((0, 0, 45, 45), q.targets) for q in questions.values()]
    assert out["target_in_crop"] < 100.0 and not all(hits)


def test_shows_targets_needs_half_of_every_target():
    target = (10.0, 10.0, 20.0, 20.0)
    assert shows_targets((0, 0, 15, 20), [target])  # exactly half
    assert not shows_targets((0, 0, 14, 20), [target])
    assert not shows_targets((0, 0, 40, 40), [target, (50.0, 50.0, 60.0, 60.0)])


def test_report_shows_the_section_and_stores_each_question(scenes, tmp_path):
    from cof_plugins.eval.report import build_report

    _, _, _, path = scenes
    questions = load_legibility(path)
    legible = {q for q, v in questions.items() if v.legible}
    _run(scenes, tmp_path, _adaptive(legible), name="adaptive")
    _run(scenes, tmp_path, lambda s, b, f: answer(s.answer), name="direct")
    md, _ = build_report(
        [tmp_path / "adaptive", tmp_path / "direct"], tmp_path / "rep", trajectories=0,
        legibility=path,
    )  # fmt: skip
    text = md.read_text()
    assert "## Adaptive behaviour by legibility" in text
    assert "| valid zoom, illegible (%) | 100.00 | 0.00 |" in text
    assert "| direct answer, legible (%) | 100.00 | 100.00 |" in text
    stored = json.loads((tmp_path / "rep" / "adaptive.json").read_text())
    assert stored["runs"]["direct"]["direct_illegible"] == 100.0
    rows = {r["id"]: r for r in stored["questions"]}
    assert set(rows) == set(questions)
    for qid, row in rows.items():
        assert row["legible"] is questions[qid].legible
        assert row["adaptive"]["valid_zoom"] is (not questions[qid].legible)
        assert row["direct"]["direct"] is True


def test_a_run_on_another_frame_is_refused(scenes, tmp_path):
    _, _, _, path = scenes
    records = _run(scenes, tmp_path, lambda s, b, f: answer(s.answer), max_pixels=112 * 112 * 2)
    with pytest.raises(LegibilityError, match="--max-pixels"):
        rates(records, load_legibility(path))


def test_unusable_legibility_files_name_the_row_and_the_fix(scenes, tmp_path):
    _, _, _, path = scenes
    rows = json.loads(path.read_text())
    del rows[1]["meta"]["legible"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(rows))
    with pytest.raises(LegibilityError, match=r"row 1: .*cof data synthesize"):
        load_legibility(bad)
    with pytest.raises(LegibilityError, match="is not in the legibility file"):
        rates([{"id": "nope", "frame": [1, 1]}], load_legibility(path))


def test_cli_report_refuses_a_bad_legibility_file(scenes, tmp_path, capsys):
    from cof_plugins.cli import main

    _run(scenes, tmp_path, lambda s, b, f: answer(s.answer))
    missing = tmp_path / "missing.json"
    code = main(["report", str(tmp_path / "run"), "-o", str(tmp_path / "r"), "--legibility",
                 str(missing)])  # fmt: skip
    assert code == 2 and "legibility file" in capsys.readouterr().err
