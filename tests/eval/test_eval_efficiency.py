"""The efficiency view (tokens by the family's arithmetic, checked against the real processor)
and the report's new sections: per-resolution tables and plots, paired comparison."""

from __future__ import annotations

import json
import zlib

import pytest
from eval_support import FakeBackend, answer, write_jsonl, zoom_call
from PIL import Image

from cof_plugins.core.chat_template import render
from cof_plugins.core.protocol import load_protocol
from cof_plugins.eval.loop import LoopConfig
from cof_plugins.eval.report import build_report
from cof_plugins.eval.runner import EvalSpec, run_eval
from cof_plugins.testbed.tiny_model import TINY_BUDGET


def test_image_and_prompt_tokens_match_the_processor(tmp_path, tiny_model, synth_samples,
                                                     synth_dir):  # fmt: skip
    from cof_plugins.eval.backends.transformers import TransformersBackend

    backend = TransformersBackend(str(tiny_model), budget=TINY_BUDGET, device="cpu")
    data = write_jsonl(tmp_path / "set.jsonl", synth_samples[:2])
    loop = LoopConfig(min_pixels=TINY_BUDGET.min_pixels, max_pixels=TINY_BUDGET.max_pixels,
                      max_new_tokens=4, max_turns=1, batch_size=4)  # fmt: skip
    spec = EvalSpec(benchmark=str(data), model=str(tiny_model), image_root=str(synth_dir),
                    loop=loop, judge=False, sweep=(224, 448))  # fmt: skip
    summary = run_eval(spec, tmp_path / "run", backend=backend, progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").open()]
    processor = backend.processor
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    protocol = load_protocol()
    for r in records:
        text = render(protocol.prompt_messages(r["question"], r["options"]),
                      add_generation_prompt=True)  # fmt: skip
        ids = processor(text=[text], images=[Image.new("RGB", tuple(r["frame"]))],
                        return_tensors="pt")["input_ids"][0].tolist()  # fmt: skip
        assert r["image_tokens"] == ids.count(pad) > 0
        assert r["prompt_tokens"] == len(ids)
        assert r["tokens"] == r["prompt_tokens"] + r["gen_tokens"]
    rows = {row["resolution"]: row for row in summary["efficiency"]}
    assert (
        set(rows) == {"224", "448"} and rows["448"]["image_tokens"] >= rows["224"]["image_tokens"]
    )


def _truth(question: str) -> str:
    return TRUTH[next(q for q in TRUTH if q in question)]


TRUTH: dict[str, str] = {}


def weak(request, turn):
    """Zooms once at low resolution; right only on some questions."""
    text = request.messages[1]["content"]
    small = max(request.images[0].size) < 300
    if turn == 0 and small:
        return zoom_call([2, 2, 60, 60])
    right = zlib.crc32(text.encode()) % 2 == 0
    truth = _truth(text)
    return answer(truth if right else ("A" if truth != "A" else "B"))


def strong(request, turn):
    return answer(_truth(request.messages[1]["content"]))


@pytest.fixture
def two_runs(tmp_path, synth_samples, synth_dir):
    samples = [s for s in synth_samples if s.options][:6]
    TRUTH.clear()
    TRUTH.update({s.question: s.answer for s in samples})
    data = write_jsonl(tmp_path / "set.jsonl", samples)
    runs = {}
    for name, reply in (("weak", weak), ("strong", strong)):
        spec = EvalSpec(benchmark=str(data), model=name, image_root=str(synth_dir), judge=False,
                        loop=LoopConfig(batch_size=6), sweep=(224, 672))  # fmt: skip
        run_eval(spec, tmp_path / name, backend=FakeBackend(reply), progress=False)
        runs[name] = tmp_path / name
    return runs


def test_report_shows_efficiency_comparison_and_conventions(tmp_path, two_runs):
    md, page = build_report([two_runs["weak"], two_runs["strong"]], tmp_path / "rep",
                            trajectories=0)  # fmt: skip
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    weak_records = [json.loads(line) for line in (two_runs["weak"] / "results.jsonl").open()]
    wrong = sum(not r["correct"] for r in weak_records)
    (cmp,) = summary["comparisons"]
    assert (cmp["run_a"], cmp["run_b"], cmp["shared"]) == ("weak", "strong", len(weak_records))
    assert cmp["b_better"] == wrong > 0 and cmp["a_better"] == 0
    assert cmp["difference"] == pytest.approx(100.0 * wrong / len(weak_records), abs=0.01)
    assert set(cmp["by_resolution"]) == {"224", "672"}
    eff = {row["resolution"]: row for row in summary["runs"]["weak"]["efficiency"]}
    assert eff["224"]["zoom_calls"] == 1.0 and eff["672"]["zoom_calls"] == 0.0
    assert eff["224"]["accuracy_ci"] is not None
    text = md.read_text()
    for heading in ("## Efficiency per resolution", "## Paired comparison",
                    "## Scoring conventions", "### weak"):  # fmt: skip
        assert heading in text
    assert (tmp_path / "rep" / "plots" / "zoom_by_resolution.png").is_file()
    assert (tmp_path / "rep" / "plots" / "accuracy_vs_tokens.png").is_file()
    # No prompt lengths from this engine: tokens are image + generated, and say so.
    assert eff["224"]["tokens"] is None and "else image + generated tokens" in text
    shown = eff["224"]["image_tokens"] + eff["224"]["gen_tokens"]
    assert f"| 224 | {eff['224']['accuracy']:.2f} | 1.00 | {shown:.2f} |" in text
    html = page.read_text()
    assert html.count("data:image/png;base64,") >= 4 and "Paired comparison" in html
