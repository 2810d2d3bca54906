"""The loop's limits and tool handling, driven by an in-process scripted backend."""

from __future__ import annotations

import json

import pytest
from eval_support import FakeBackend, answer, write_jsonl, zoom_call
from PIL import Image

from cof_plugins.core.frame import frame_size
from cof_plugins.eval.benchmarks import load_benchmark
from cof_plugins.eval.loop import LoopConfig, Trajectory, resize_long_side, run_loop
from cof_plugins.eval.scoring import score
from cof_plugins.eval.summary import summarize


def _bench(tmp_path, synth_samples, synth_dir, n=3, extra=None):
    path = write_jsonl(tmp_path / "set.jsonl", synth_samples[:n], extra)
    return load_benchmark(path, image_root=synth_dir).samples


def _run(samples, backend, cfg, sweep=(None,)):
    done: list[Trajectory] = []
    work = [(s, r) for r in sweep for s in samples]
    run_loop(work, backend, cfg, done.extend, progress=False)
    return done


def test_always_zooming_stops_at_turn_and_image_limits(tmp_path, synth_samples, synth_dir):
    samples = _bench(tmp_path, synth_samples, synth_dir)
    backend = FakeBackend(lambda r, t: zoom_call([1, 1, 20, 20]) + zoom_call([5, 5, 30, 30]))
    done = _run(samples, backend, LoopConfig(max_turns=5, max_images=3, batch_size=2))
    assert len(done) == 3
    for traj in done:
        assert traj.stop == "max_turns" and len(traj.turns) == 5
        crops = [c for t in traj.turns for c in t["calls"] if c["kind"] == "crop"]
        limited = [c for t in traj.turns for c in t["calls"] if c["kind"] == "limit"]
        assert len(crops) == 2 and len(limited) == 2  # 1 original + 2 crops = 3 images
        assert "already holds 3 images" in limited[0]["message"]
        # The default profile runs the first call of a turn: the second never runs.
        assert [t.get("calls_not_run") for t in traj.turns[:4]] == [1, 1, 1, 1]
    assert max(len(call) for call in backend.calls) == 2  # the pool never exceeds batch_size
    records = score(done)
    assert all(r["pred"] is None and r["correct"] is False for r in records)
    assert all(r["images"] == 3 and r["zoom_calls"] == 2 for r in records)


def test_backend_sees_frames_and_crops_of_the_first_image(tmp_path, synth_samples, synth_dir):
    big = [s for s in synth_samples if max(s.width, s.height) == 1024]  # frame != input size
    samples = _bench(tmp_path, big, synth_dir, n=2)

    def reply(request, turn):
        if turn == 0:
            return zoom_call([0, 0, 40, 40])
        if turn == 1:  # a second zoom, elsewhere: it must crop the original again
            return zoom_call([10, 10, 60, 50])
        return answer("A")

    backend = FakeBackend(reply)
    done = _run(samples, backend, LoopConfig(batch_size=4))
    last = backend.calls[-1]
    for traj, request in zip(done, last, strict=True):
        frame = frame_size(traj.input_size, "qwen2_5_vl")
        assert request.images[0].size == frame == tuple(traj.frame)
        calls = [t["calls"][0] for t in traj.turns[:2]]
        assert [c["source"] for c in calls] == ["original", "original"]
        assert [tuple(request.images[i + 1].size) for i in range(2)] == [
            tuple(c["crop_size"]) for c in calls
        ]
        assert request.messages[-1]["content"].startswith("<image>\n")
        assert traj.stop == "answer" and len(traj.turns) == 3


def test_paper_profile_crops_the_frame(tmp_path, synth_samples, synth_dir):
    big = [s for s in synth_samples if s.width == 1024][:1]
    samples = _bench(tmp_path, big, synth_dir, n=1)
    backend = FakeBackend(lambda r, t: zoom_call([0, 0, 40, 40]) if t == 0 else answer("A"))
    cfg = LoopConfig(max_pixels=448 * 448, profile="paper")
    (traj,) = _run(samples, backend, cfg)
    assert traj.turns[0]["calls"][0]["source"] == "frame"
    assert max(traj.frame) < 1024


def test_unknown_profile_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"default.*paper"):
        LoopConfig(profile="papr")


def test_sweep_resizes_long_side_before_the_frame(tmp_path, synth_samples, synth_dir):
    samples = _bench(tmp_path, synth_samples, synth_dir, n=2)
    backend = FakeBackend(lambda r, t: answer("A"))
    done = _run(samples, backend, LoopConfig(), sweep=(224, 672))
    assert sorted(t.key.split("@")[1] for t in done) == ["224", "224", "672", "672"]
    for traj in done:
        w, h = traj.input_size
        long_side = traj.resolution
        expect = frame_size(
            resize_long_side(Image.new("RGB", (w, h)), long_side).size, "qwen2_5_vl"
        )
        assert tuple(traj.frame) == expect
    summary = summarize(score(done))
    assert set(summary["by_resolution"]) == {"224", "672"}
    assert summary["by_resolution"]["224"]["overall"]["n"] == 2


def test_unreadable_image_is_an_error_record(tmp_path, synth_samples, synth_dir):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    extra = [{"id": "broken", "image": str(bad), "question": "Q?", "answer": "x"}]
    samples = _bench(tmp_path, synth_samples, synth_dir, n=1, extra=extra)
    done = _run(samples, FakeBackend(lambda r, t: answer("A")), LoopConfig())
    (broken,) = [t for t in done if t.sample.id == "broken"]
    assert broken.stop == "error" and "cannot read image" in broken.error
    (record,) = [r for r in score(done) if r["id"] == "broken"]
    assert record["correct"] is False and summarize([record])["overall"]["errors"] == 1


def test_judge_only_when_rules_cannot_tell(tmp_path, synth_samples, synth_dir):
    from cof_plugins.judge import JudgeVerdict

    class Judge:
        def __init__(self):
            self.items = []

        def judge_many_sync(self, items):
            self.items.extend(items)
            return [JudgeVerdict("red" in a, "judge", "Judgement: 1") for _, a, _ in items]

    extra = [{"id": "open", "image": synth_samples[0].image, "question": "What colour?",
              "answer": "red"}]  # fmt: skip
    samples = _bench(tmp_path, synth_samples, synth_dir, n=2, extra=extra)
    letters = {s.id: s.answer for s in samples}

    def reply(request, turn):
        text = request.messages[1]["content"]
        if "What colour?" in text:
            return "<think>hm</think> <answer>a bright red car</answer>"
        sample = next(s for s in samples if s.question in text and s.options)
        return answer(letters[sample.id])

    judge = Judge()
    records = score(_run(samples, FakeBackend(reply), LoopConfig()), judge)
    assert len(judge.items) == 1 and judge.items[0] == ("What colour?", "a bright red car", "red")
    by_id = {r["id"]: r for r in records}
    assert by_id["open"]["correct"] is True and by_id["open"]["decided_by"] == "judge"
    assert all(r["decided_by"] == "rules" for k, r in by_id.items() if k != "open")
    undecided = score(_run(samples[-1:], FakeBackend(reply), LoopConfig()), None)
    assert undecided[0]["decided_by"] == "undecided" and undecided[0]["correct"] is False


def test_config_errors_name_the_setting():
    with pytest.raises(ValueError, match="max_turns"):
        LoopConfig(max_turns=0)
    with pytest.raises(KeyError, match="known families"):
        LoopConfig(family="llava")
    with pytest.raises(ValueError, match="min_pixels"):
        LoopConfig(min_pixels=10, max_pixels=5)
    json.dumps(LoopConfig().to_dict())


class _RecordingJudge:
    """Stands in for the judge client: records each (question, answer, reference)."""

    def __init__(self):
        self.queries = []

    def judge_many_sync(self, items):
        from cof_plugins.judge import JudgeVerdict

        self.queries.extend(items)
        return [JudgeVerdict(True, "judge") for _ in items]


def test_paper_scores_the_first_answer_against_the_letter(tmp_path, synth_samples, synth_dir):
    """The release's scorer: the first <answer> of the final turn; the judge sees "B"."""
    samples = _bench(tmp_path, [s for s in synth_samples if s.options], synth_dir, n=1)
    two = "<think>x</think> <answer>a hedge</answer> then <answer>perhaps the other one</answer>"
    for profile, pred, reference in (
        ("default", "perhaps the other one", samples[0].answer_text),
        ("paper", "a hedge", samples[0].answer),
    ):
        done = _run(samples, FakeBackend(lambda r, t: two), LoopConfig(profile=profile))
        judge = _RecordingJudge()
        (record,) = score(done, judge, profile)
        assert record["pred"] == pred and record["decided_by"] == "judge"
        ((_, answer_seen, reference_seen),) = judge.queries
        assert (answer_seen, reference_seen) == (pred, reference)
