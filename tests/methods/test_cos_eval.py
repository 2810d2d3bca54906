"""Chain-of-Spot evaluation: ROI first, crop second, unusable boxes fall back and are counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cof_plugins.cli import main
from cof_plugins.core.cos import RoiFrame, load_cos_protocol, parse_roi
from cof_plugins.core.frame import PixelBudget
from cof_plugins.core.zoom_step import make_frame
from cof_plugins.eval.backends import Generation
from cof_plugins.eval.store import RunDirError
from cof_plugins.methods.cos_eval import CosEvalSpec, run_cos_eval
from cof_plugins.testbed.synth import read_dataset, write_dataset, write_vstar_layout

TINY = PixelBudget(3136, 50176)
PIXELS = ["--min-pixels", "3136", "--max-pixels", "50176"]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    out = tmp_path_factory.mktemp("cos_scenes")
    write_vstar_layout(write_dataset(out, 4, (224, 448), seed=5, progress=False))
    return out


class Scripted:
    """A backend that replies from a table: (question id, turn) -> text; records requests."""

    name = "scripted"

    def __init__(self, replies):
        self.replies, self.requests = replies, []

    def generate(self, requests, max_new_tokens):
        self.requests.extend(requests)
        out = []
        for r in requests:
            turn = sum(m["role"] == "assistant" for m in r.messages)
            qid = next(k for k in self.replies if k in r.messages[0]["content"])
            out.append(Generation(self.replies[qid][turn], 3))
        return out

    def describe(self):
        return {"backend": self.name}

    def close(self):
        pass


def _spec(scenes, **kw):
    return CosEvalSpec(benchmark=str(scenes / "test_questions.jsonl"), model="scripted",
                       boxes=str(scenes / "annotations.jsonl"), min_pixels=3136,
                       max_pixels=50176, **kw)  # fmt: skip


def _script(scenes):
    """Sample 0: the true ROI; 1: unparsable; 2: degenerate; 3: a box away from the target."""
    samples = read_dataset(scenes / "annotations.jsonl")
    cos = load_cos_protocol()
    from cof_plugins.core.cos import roi_from_box
    from cof_plugins.eval.images import ImageRef

    size0 = ImageRef("path", str(scenes / samples[0].image)).load().size
    true = RoiFrame.of(cos, size0, "qwen2_5_vl", TINY).write(roi_from_box(samples[0].bbox, size0))
    x = 0.9 if samples[3].bbox[0] < samples[3].width / 2 else 0.0
    far = str([x, 0.0, x + 0.1, 1.0])
    boxes = [true, "[0.1, 0.2, 0.3] and more", "[0.5, 0.5, 0.4, 0.6]", far]
    answers = [samples[0].answer, "Z", samples[2].answer, "(" + samples[3].answer + ")"]
    return {s.question: (b, a) for s, b, a in zip(samples, boxes, answers, strict=True)}, samples


def test_roi_then_crop_fallbacks_counted_and_overlap_scored(scenes, tmp_path):
    script, samples = _script(scenes)
    backend = Scripted(script)
    summary = run_cos_eval(_spec(scenes), tmp_path / "run", backend=backend, progress=False)
    assert summary["n"] == 4 and summary["fallback_rate"] == 0.5
    assert summary["fallbacks"] == {"unparsable": 1, "degenerate": 1}
    assert summary["roi_overlap_rate"] == 0.25 and summary["n_with_target"] == 4
    assert summary["accuracy"] == 0.75  # "Z" is wrong; "(B)" is read as B
    records = {r["id"]: r for r in _records(tmp_path / "run")}
    assert records[samples[0].id]["roi_overlap"] and records[samples[0].id]["roi_iou"] > 0
    assert [records[s.id]["fallback"] for s in samples] == [False, True, True, False]
    # Turn 1 shows the frame and the ROI request; turn 2 adds the crop, or the whole image.
    cos = load_cos_protocol()
    first, second = backend.requests[:4], backend.requests[4:]
    assert all(len(r.images) == 1 and len(r.messages) == 1 for r in first)
    assert first[0].messages[0]["content"] == cos.roi_turn(samples[0].question)
    for request, sample in zip(second, samples, strict=True):
        image = _load(scenes, sample)
        assert request.images[0].tobytes() == make_frame(image, "qwen2_5_vl", TINY).tobytes()
        record = records[sample.id]
        if record["fallback"]:
            expected = make_frame(image, "qwen2_5_vl", TINY)
        else:
            frame = RoiFrame.of(cos, image.size, "qwen2_5_vl", TINY)
            roi, _ = frame.read(parse_roi(record["replies"][0]).values)
            expected = make_frame(frame.crop(image, roi), "qwen2_5_vl", TINY)
        assert request.images[1].tobytes() == expected.tobytes()
        assert request.messages[-1]["content"].startswith("<image>\nHere is your region")
    # Resumed: nothing runs again; other settings are refused, naming what differs.
    again = Scripted(script)
    assert run_cos_eval(_spec(scenes), tmp_path / "run", backend=again, progress=False) == summary
    assert again.requests == []
    with pytest.raises(RunDirError, match="protocol"):
        run_cos_eval(_spec(scenes, protocol="chain-of-spot-native"), tmp_path / "run",
                     backend=again, progress=False)  # fmt: skip


def test_settings_are_recorded_as_cof_eval_records_them(scenes, tmp_path, monkeypatch):
    """The shared part (eval.spec.RunSpec): absolute paths, the backend options that change
    results; a run stored before those options were recorded still resumes."""
    script, _ = _script(scenes)
    monkeypatch.chdir(scenes)
    spec = _spec(scenes, image_root=".", backend_options={"dtype": "float32"})
    run = tmp_path / "run"
    run_cos_eval(spec, run, backend=Scripted(script), progress=False)
    info = json.loads((run / "run.json").read_text())
    settings = info["settings"]
    assert settings["image_root"] == str(scenes) and settings["method"] == "chain-of-spot"
    assert settings["backend_options"] == {"dtype": "float32"}
    assert all(Path(r["image"]["path"]).is_absolute() for r in _records(run))
    with pytest.raises(RunDirError, match=r"backend_options\.dtype: 'float32' -> 'bfloat16'"):
        run_cos_eval(_spec(scenes, image_root=".", backend_options={"dtype": "bfloat16"}),
                     run, backend=Scripted(script), progress=False)  # fmt: skip
    del settings["backend_options"]
    (run / "run.json").write_text(json.dumps(info))
    again = Scripted(script)
    run_cos_eval(_spec(scenes, image_root="."), run, backend=again, progress=False)
    assert again.requests == []


def _records(run):
    return [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]


def _load(scenes, sample):
    from cof_plugins.eval.images import ImageRef

    return ImageRef("path", str(scenes / sample.image)).load()


def test_cof_eval_method_chain_of_spot_runs_the_tiny_model(scenes, tiny_model, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["eval", "--method", "chain-of-spot", "--data", str(scenes / "test_questions.jsonl"),
            "--boxes", str(scenes / "annotations.jsonl"), "--model", str(tiny_model),
            "--run-dir", str(run), "--max-new-tokens", "12", "--no-progress", *PIXELS]  # fmt: skip
    assert main(argv) == 0
    assert "chain-of-spot  n 4" in capsys.readouterr().out
    records = _records(run)
    assert len(records) == 4 and all(len(r["replies"]) == 2 for r in records)
    summary = json.loads((run / "summary.json").read_text())
    # A random model writes no box: every question falls back, and each one is counted.
    assert summary["fallback_rate"] == 1.0 and sum(summary["fallbacks"].values()) == 4
    assert main(["report", str(run), "-o", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "report.html").read_text()
    assert "Chain-of-Spot" in page and page.count("<img") == 4
    for cof_only in (["--sweep", "224"], ["--samples", "2"], ["--shuffle-options", "1"]):
        assert main([*argv, *cof_only]) == 2  # CoF-only options are refused, not ignored
        assert f"{cof_only[0]} do(es) not apply" in capsys.readouterr().err
    cof = ["eval", "--data", str(scenes / "test_questions.jsonl"), "--model", str(tiny_model),
           "--run-dir", str(tmp_path / "cof"), "--protocol", "chain-of-spot"]  # fmt: skip
    assert main(cof) == 2  # the CoF loop refuses a Chain-of-Spot protocol
    assert "pass --method chain-of-spot" in capsys.readouterr().err
