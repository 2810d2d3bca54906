"""`cof eval` on the families beyond the paper's (its own: test_eval_*.py), both backends.

The transformers backend runs each family's tiny model (random weights: garbage text, but
the prompt, the frame and the loop are the family's). The OpenAI-compatible backend talks to
a scripted loopback server that writes what a trained model of the family would: a zoom in
the family's box convention (GLM with its own box markers), then a (GLM: boxed) answer.
"""

from __future__ import annotations

import json

import pytest
from eval_support import request_images, turn_of, write_vstar
from PIL import Image

from cof_plugins.core.coords import from_frame_pixels, to_frame_pixels
from cof_plugins.core.families import BUILTIN, get_family
from cof_plugins.core.frame import PixelBudget, frame_size
from cof_plugins.core.zoom import ZoomConfig, plan_zoom
from cof_plugins.eval.loop import LoopConfig
from cof_plugins.eval.runner import EvalSpec, run_eval
from cof_plugins.testbed.openai_server import FakeOpenAIServer
from cof_plugins.testbed.tiny_model import TINY_BUDGET

NEW = tuple(f for f in BUILTIN if f != "qwen2_5_vl")


@pytest.mark.parametrize("family", NEW)
def test_transformers_backend_prompts_and_frames_are_the_familys(
    family, tiny_model_factory, synth_samples, synth_dir, tmp_path
):
    from cof_plugins.core.chat_template import render
    from cof_plugins.core.protocol import load_protocol
    from cof_plugins.eval.backends import Request
    from cof_plugins.eval.backends.transformers import TransformersBackend

    spec = get_family(family)
    model = tiny_model_factory(family)
    backend = TransformersBackend(str(model), budget=TINY_BUDGET, device="cpu")
    assert backend.family is spec and backend.describe()["family"] == family
    frame = frame_size((1000, 600), family, TINY_BUDGET)
    grid = backend.processor.image_processor(images=[Image.new("RGB", frame)])["image_grid_thw"]
    assert (int(grid[0][2]) * spec.patch_size, int(grid[0][1]) * spec.patch_size) == frame
    messages = load_protocol().prompt_messages("What colour?", ["red", "blue"])
    text = render(messages, add_generation_prompt=True, family=family)
    assert text.startswith(spec.chat.prefix + spec.chat.system.split("{content}")[0])
    out = backend.generate([Request(messages, [Image.new("RGB", frame)])], 4)
    assert 1 <= out[0].tokens <= 4

    data = write_vstar(tmp_path / "vstar", synth_samples[:2], synth_dir)
    budget = {"min_pixels": TINY_BUDGET.min_pixels, "max_pixels": TINY_BUDGET.max_pixels}
    loop = LoopConfig(family=family, max_new_tokens=8, batch_size=2, **budget)
    spec_ = EvalSpec(benchmark=str(data), model=str(model), loop=loop, judge=False)
    summary = run_eval(spec_, tmp_path / "run", backend=backend, progress=False)
    records = [json.loads(x) for x in (tmp_path / "run" / "results.jsonl").open()]
    assert summary["overall"]["n"] == len(records) == 2
    for r in records:
        assert tuple(r["frame"]) == frame_size(tuple(r["source_size"]), family, TINY_BUDGET)


def _family_zoom(family: str, frame: tuple[int, int], box_px: list[float]) -> str:
    spec = get_family(family)
    box = [int(v) for v in from_frame_pixels(box_px, spec.coords, frame)]
    args = json.dumps(box)
    if spec.chat.box_markers:  # GLM writes its box between its own markers
        args = spec.chat.box_markers[0] + args + spec.chat.box_markers[1]
    return ('<think>too small</think><tool_call>{"name": "image_zoom_in_tool", '
            f'"arguments": {{"bbox_2d": {args}}}}}</tool_call>')  # fmt: skip


def _family_answer(family: str, letter: str) -> str:
    markers = get_family(family).chat.box_markers or ("", "")
    return f"<think>I see it</think><answer>{markers[0]}{letter}{markers[1]}</answer>"


@pytest.mark.parametrize("family", NEW)
def test_openai_backend_reads_the_familys_boxes_and_answers(
    family, synth_samples, synth_dir, tmp_path
):
    samples = [s for s in synth_samples if s.width <= 1024][:2]
    budget = PixelBudget()
    by_question = {s.question: s for s in samples}

    def target_box(sample):
        frame = frame_size((sample.width, sample.height), family, budget)
        sx, sy = frame[0] / sample.width, frame[1] / sample.height
        x1, y1, x2, y2 = sample.bbox
        return frame, [x1 * sx, y1 * sy, x2 * sx, y2 * sy]

    def respond(body):
        text = json.dumps(body["messages"])
        sample = next(s for q, s in by_question.items() if q in text)
        frame, box = target_box(sample)
        return (
            _family_zoom(family, frame, box)
            if turn_of(body) == 0
            else _family_answer(family, sample.answer)
        )

    data = write_vstar(tmp_path / "vstar", samples, synth_dir)
    with FakeOpenAIServer(respond) as server:
        spec = EvalSpec(benchmark=str(data), model="scripted", backend="openai",
                        loop=LoopConfig(family=family, batch_size=2), judge=False,
                        backend_options={"url": server.url, "concurrency": 2})  # fmt: skip
        summary = run_eval(spec, tmp_path / "run", progress=False)
    records = [json.loads(x) for x in (tmp_path / "run" / "results.jsonl").open()]
    assert summary["overall"]["accuracy"] == 100.0
    assert all(r["zoom_calls"] == 1 and r["correct"] and r["format_ok"] for r in records)
    for sample in samples:
        (body,) = [b for b in server.bodies if turn_of(b) == 1 and sample.question in json.dumps(b)]
        frame_img, crop = request_images(body)
        frame, box = target_box(sample)
        assert frame_img.size == frame
        # The box went out in the family's convention and came back as the same frame box.
        written = from_frame_pixels(box, get_family(family).coords, frame)
        plan = plan_zoom((sample.width, sample.height), frame,
                         to_frame_pixels(written, get_family(family).coords, frame),
                         ZoomConfig.for_family(family, min_pixels=112 * 112,
                                               max_pixels=3840 * 3840))  # fmt: skip
        assert crop.size == plan.size
