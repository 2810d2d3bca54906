"""The loop driven through the OpenAI-compatible backend against a scripted loopback server.

The script zooms on the target, then sends a malformed call, then an out-of-range box, then
answers, so every branch of the tool handling runs with a real HTTP round trip.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from eval_support import (
    answer,
    request_images,
    request_text,
    turn_of,
    write_vstar,
    zoom_call,
)
from PIL import Image

from cof_plugins.core.frame import frame_size, smart_resize
from cof_plugins.core.protocol import load_protocol
from cof_plugins.core.zoom import ZoomConfig, plan_zoom
from cof_plugins.eval.loop import LoopConfig
from cof_plugins.eval.runner import EvalSpec, run_eval
from cof_plugins.testbed.openai_server import FakeOpenAIServer

MALFORMED = (
    '<think>look again</think> <tool_call>{"name": "image_zoom_in_tool", '
    '"arguments": {"bbox_2d": [1, 2, 3</tool_call>'
)
N = 4


def frame_box(sample) -> tuple[tuple[int, int], list[float]]:
    frame = frame_size((sample.width, sample.height), "qwen2_5_vl")
    sx, sy = frame[0] / sample.width, frame[1] / sample.height
    x1, y1, x2, y2 = sample.bbox
    return frame, [round(x1 * sx), round(y1 * sy), round(x2 * sx), round(y2 * sy)]


def scripted(samples):
    by_question = {s.question: s for s in samples}

    def respond(body: dict) -> str:
        time.sleep(0.03)  # long enough for concurrent requests to overlap
        first_user = next(m for m in body["messages"] if m["role"] == "user")
        text = "".join(p.get("text", "") for p in first_user["content"])
        sample = next(s for q, s in by_question.items() if q in text)
        frame, box = frame_box(sample)
        script = [zoom_call(box), MALFORMED, zoom_call([0, 0, frame[0] + 50, 10]),
                  answer(sample.answer)]  # fmt: skip
        return script[min(turn_of(body), 3)]

    return respond


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synth_samples, synth_dir):
    """Two runs over the same V* folder: the default profile and --profile paper."""
    samples = [s for s in synth_samples if s.width <= 1024][:N]
    root = tmp_path_factory.mktemp("oa")
    data = write_vstar(root / "vstar", samples, synth_dir)
    out = {}
    for name in ("default", "paper"):
        with FakeOpenAIServer(scripted(samples)) as server:
            spec = EvalSpec(
                benchmark=str(data), model="scripted", backend="openai",
                loop=LoopConfig(batch_size=N, profile=name), judge=False,
                backend_options={"url": server.url, "concurrency": N},
            )  # fmt: skip
            summary = run_eval(spec, root / name, progress=False)
        records = [json.loads(line) for line in (root / name / "results.jsonl").open()]
        out[name] = (summary, records, server, root / name)
    return samples, out


def _bodies(server, sample, turn):
    return [
        b for b in server.bodies
        if turn_of(b) == turn and sample.question in request_text(b)
    ]  # fmt: skip


def test_counts_and_scores(runs):
    _, out = runs
    summary, records, _, _ = out["default"]
    assert len(records) == N and len({r["key"] for r in records}) == N
    for r in records:
        assert (r["turns"], r["zoom_calls"], r["tool_attempts"], r["invalid_calls"]) == (4, 1, 3, 2)
        assert r["images"] == 2 and r["stop"] == "answer" and r["format_ok"] is True
        assert r["correct"] is True and r["decided_by"] == "rules"
        assert r["gen_tokens"] == sum(len(t["text"].split()) for t in r["trajectory"])
    assert summary["overall"]["accuracy"] == 100.0 and summary["overall"]["zoom_calls"] == 1.0
    assert summary["overall"]["zoom_rate"] == 100.0
    assert sum(c["n"] for c in summary["by_category"].values()) == N


def test_crop_is_the_target_from_the_original(runs):
    samples, out = runs
    server = out["default"][2]
    for sample in samples:
        (body,) = _bodies(server, sample, 1)
        frame_img, crop = request_images(body)
        frame, box = frame_box(sample)
        assert frame_img.size == frame
        plan = plan_zoom((sample.width, sample.height), frame, tuple(box), ZoomConfig(
            min_pixels=112 * 112, max_pixels=3840 * 3840))  # fmt: skip
        assert crop.size == plan.size
        diff = np.abs(np.asarray(crop, dtype=int) - np.array(sample.target_colour)).max(axis=2)
        assert (diff < 40).mean() > 0.05, "the crop should show the target's colour"


def test_invalid_calls_get_model_facing_messages(runs):
    samples, out = runs
    _, records, server, _ = out["default"]
    protocol = load_protocol()
    for sample, record in zip(samples, records, strict=True):
        parse_error = record["trajectory"][1]["calls"][0]
        assert parse_error["kind"] == "parse" and not parse_error["ok"]
        (second,) = _bodies(server, sample, 2)
        assert parse_error["message"] in request_text(second)
        assert len(request_images(second)) == 2  # no image for a call that could not be read
        box_error = record["trajectory"][2]["calls"][0]
        assert box_error["kind"] == "box" and "lies outside" in box_error["message"]
        (third,) = _bodies(server, sample, 3)
        last_user = third["messages"][-1]["content"]
        assert box_error["message"] in last_user and last_user.endswith(protocol.user_suffix)
        assert third["messages"][0]["content"] == protocol.system
        assert third["temperature"] == 0.0 and third["max_tokens"] == 512


def test_paper_failed_calls_return_the_whole_frame_scaled_2x(runs):
    """The release's evaluation: an unreadable call or a bad box crops nothing and sends the
    whole frame, upscaled 2x (within the crop budget), as the "crop"; no error message."""
    samples, out = runs
    _, records, server, _ = out["paper"]
    for sample, record in zip(samples, records, strict=True):
        assert record["images"] == 4 and record["invalid_calls"] == 2
        sources = [record["trajectory"][k]["calls"][0]["source"] for k in (1, 2)]
        assert sources == ["whole_frame", "whole_frame"]
        (fourth,) = _bodies(server, sample, 3)
        images = request_images(fourth)
        assert len(images) == 4
        frame = images[0]
        h, w = smart_resize(2 * frame.height, 2 * frame.width, 28, 112 * 112, 3840 * 3840)
        expected = frame.resize((w, h), Image.Resampling.LANCZOS)
        assert images[2].size == images[3].size == (w, h)
        assert np.array_equal(np.asarray(images[3]), np.asarray(expected))
        assert "lies outside" not in fourth["messages"][-1]["content"]


def test_requests_of_a_turn_run_concurrently(runs):
    _, out = runs
    assert out["default"][2].max_in_flight >= 2


def test_report_side_by_side(runs, tmp_path):
    from cof_plugins.eval.report import build_report

    _, out = runs
    md, page = build_report([out["default"][3], out["paper"][3]], tmp_path / "rep", trajectories=2)
    text = md.read_text()
    assert "| accuracy (%) [95% CI] | 100.00 [100.0, 100.0] | 100.00 [100.0, 100.0] |" in text
    assert "| invalid calls / sample | 2.00 | 2.00 |" in text
    assert "profile paper" in text and "direct_attributes" in text
    pngs = sorted((tmp_path / "rep" / "trajectories").glob("*.png"))
    assert len(pngs) == 4
    html = page.read_text()
    # trajectories + category plots + accuracy vs tokens (one point per run: no sweep)
    assert html.count("data:image/png;base64,") == 4 + 2 + 1
    assert 'src="plots/' not in html and "<table>" in html


def test_viz_cli_draws_run_and_rollout(runs, tmp_path, synth_dir):
    import argparse

    from PIL import Image

    from cof_plugins.commands import eval as cmd

    samples, out = runs
    parser = argparse.ArgumentParser()
    cmd.add_parser(parser.add_subparsers())
    png = tmp_path / "one.png"
    args = parser.parse_args(["viz", str(out["default"][3]), "--sample", "0", "-o", str(png)])
    assert args.func(args) == 0
    assert Image.open(png).size[0] > 720
    sample = samples[0]
    _, box = frame_box(sample)
    crop = tmp_path / "crop.png"
    Image.new("RGB", (112, 112), tuple(sample.target_colour)).save(crop)
    row = {"messages": [{"role": "user", "content": "<image>Q"},
                        {"role": "assistant", "content": zoom_call(box)},
                        {"role": "user", "content": "<image>"},
                        {"role": "assistant", "content": answer("A")}],
           "images": [str(synth_dir / sample.image), str(crop)]}  # fmt: skip
    dump = tmp_path / "rollouts.jsonl"
    dump.write_text("\n" + json.dumps(row) + "\n")
    args = parser.parse_args(["viz", str(dump), "--index", "0", "-o", str(tmp_path / "r.png")])
    assert args.func(args) == 0 and (tmp_path / "r.png").is_file()
    args = parser.parse_args(["viz", str(dump), "--index", "5", "-o", str(tmp_path / "x.png")])
    assert args.func(args) == 2
