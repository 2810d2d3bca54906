"""The attention ROI miner: exact boxes from crafted maps, shapes on the tiny model, and a
tiny model set to attend to one patch (what the plumbing finds is where attention is)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cof_plugins.core.frame import PixelBudget, frame_size
from cof_plugins.methods.cos_attention import (
    AttentionMiner,
    MinerConfig,
    aggregate,
    cells_to_box,
    fit_box,
)

TINY = PixelBudget(3136, 50176)


def _attentions(layers: int, heads: int, seq: int, image_cols, weights_by_layer):
    """Attention tensors (1, heads, seq, seq); the last row gives image tokens ``weights``."""
    out = []
    for layer in range(layers):
        att = np.zeros((1, heads, seq, seq))
        for head in range(heads):
            att[0, head, -1, image_cols] = weights_by_layer[layer]
        out.append(att)
    return out


def test_crafted_attention_gives_the_exact_cells():
    grid = np.zeros((4, 6))
    grid[1, 2], grid[1, 3], grid[2, 3] = 1.0, 0.7, 0.6  # the peak's blob
    grid[3, 0] = 0.55  # a second blob above threshold, not joined to the peak
    cols = list(range(5, 5 + grid.size))  # image tokens sit after 5 text tokens
    atts = _attentions(2, 3, 40, cols, [grid.ravel(), np.zeros(grid.size)])
    cfg = MinerConfig(layers=(0,), threshold=0.5)
    values = aggregate(atts, [39], cols, cfg)
    assert np.allclose(values.reshape(4, 6), grid)
    assert fit_box(values.reshape(4, 6), cfg) == (2, 1, 4, 3)
    assert fit_box(values.reshape(4, 6), MinerConfig(fit="all", threshold=0.5)) == (0, 1, 4, 4)
    assert fit_box(values.reshape(4, 6), MinerConfig(threshold=0.9)) == (2, 1, 3, 2)
    # Layers are averaged (or maxed) after heads: layer 1 is silent here.
    assert np.allclose(aggregate(atts, [39], cols, MinerConfig()), grid.ravel() / 2)
    assert np.allclose(aggregate(atts, [39], cols, MinerConfig(layer_aggregate="max")),
                       grid.ravel())  # fmt: skip
    assert fit_box(np.zeros((3, 3)), cfg) == (0, 0, 3, 3)  # no signal: the whole image
    # Cells are 28 frame pixels; the frame maps back onto the original.
    assert cells_to_box((2, 1, 4, 3), (168, 112), (336, 224), 28) == (112.0, 56.0, 224.0, 168.0)
    with pytest.raises(ValueError, match="out of range"):
        aggregate(atts, [39], cols, MinerConfig(layers=(5,)))
    with pytest.raises(ValueError, match="threshold"):
        MinerConfig(threshold=0)


def test_miner_on_the_tiny_model_returns_a_map_of_the_token_grid(tiny_model):
    image = Image.effect_noise((336, 224), 40).convert("RGB")
    miner = AttentionMiner(str(tiny_model), MinerConfig(layers=(-1,)), budget=TINY)
    mined = miner.mine(image, "What colour is the small square?")
    fw, fh = frame_size(image.size, "qwen2_5_vl", TINY)
    assert mined.grid.shape == (fh // 28, fw // 28)
    assert 0 < mined.grid.sum() <= 1 + 1e-6  # a share of one query's attention
    x1, y1, x2, y2 = mined.box
    assert 0 <= x1 < x2 <= 336 and 0 <= y1 < y2 <= 224


def _attend_to(model_dir, out_dir, image, token: int, scale: float = 60.0):
    """Copy the tiny model with its first layer's queries fixed and keys reading one
    direction: the image token ``token``'s own feature, in the least-rotated rotary pair."""
    import torch
    import transformers

    from cof_plugins.core.chat_template import render
    from cof_plugins.core.cos import load_cos_protocol
    from cof_plugins.core.zoom_step import make_frame
    from cof_plugins.hf_checkpoint import set_image_budget

    shutil.copytree(model_dir, out_dir)
    model = transformers.AutoModelForImageTextToText.from_pretrained(model_dir)
    processor = transformers.AutoProcessor.from_pretrained(model_dir)
    set_image_budget(processor.image_processor, TINY)
    frame = make_frame(image, "qwen2_5_vl", TINY)
    text = render(
        [{"role": "user", "content": load_cos_protocol().roi_turn("Q?")}],
        add_generation_prompt=True,
    )
    inputs = processor(text=[text], images=[frame], return_tensors="pt")
    layer = model.model.language_model.layers[0]
    attn, head_dim = layer.self_attn, layer.self_attn.head_dim
    with torch.no_grad():
        feats = model.model.get_image_features(
            inputs["pixel_values"], inputs["image_grid_thw"]
        ).pooler_output[0]
        normed = layer.input_layernorm(feats)
        direction = normed[token] - normed.mean(0)
        direction /= direction.norm()
        slow = head_dim // 2 - 1  # the lowest rotary frequency: position barely rotates it
        for weights in (attn.q_proj.weight, attn.q_proj.bias, attn.k_proj.weight,
                        attn.k_proj.bias):  # fmt: skip
            weights.zero_()
        for head in range(attn.q_proj.out_features // head_dim):
            attn.q_proj.bias[head * head_dim + slow] = 1.0
        for group in range(attn.k_proj.out_features // head_dim):
            attn.k_proj.weight[group * head_dim + slow] = scale * direction
    model.save_pretrained(out_dir)
    return frame.size


def test_a_model_set_to_attend_to_one_patch_gets_that_patch_as_roi(tiny_model, tmp_path):
    image = Image.new("RGB", (336, 224), (150, 150, 150))
    ImageDraw.Draw(image).rectangle((190, 78, 219, 107), fill=(230, 20, 20))
    frame = frame_size(image.size, "qwen2_5_vl", TINY)
    assert frame == (252, 168)  # a 9 x 6 grid of 28-pixel cells; the square is in (5, 2)
    cols = frame[0] // 28
    size = _attend_to(tiny_model, tmp_path / "attend", image, token=2 * cols + 5)
    assert size == frame
    miner = AttentionMiner(str(tmp_path / "attend"), MinerConfig(layers=(0,)), budget=TINY)
    mined = miner.mine(image, "What colour is the small square?")
    assert np.unravel_index(int(mined.grid.argmax()), mined.grid.shape) == (2, 5)
    assert mined.box == pytest.approx(cells_to_box((5, 2, 6, 3), frame, image.size, 28))
    assert mined.box == pytest.approx((336 * 140 / 252, 224 * 56 / 168, 224.0, 112.0))
    # The untouched model's first layer does not single that cell out.
    plain = AttentionMiner(str(tiny_model), MinerConfig(layers=(0,)), budget=TINY)
    assert plain.mine(image, "What colour is the small square?").box != mined.box


def test_cli_rows_take_their_roi_from_the_models_attention(tiny_model, synth_dir, tmp_path):
    import json

    from cof_plugins.cli import main
    from cof_plugins.core.cos import RoiFrame, RoiShape, load_cos_protocol, parse_roi, roi_from_box

    argv = ["data", "chain-of-spot", "--from", str(synth_dir / "annotations.jsonl"),
            "--min-pixels", "3136", "--max-pixels", "50176", "--limit", "2",
            "--roi-source", "attention", "--layers", "-1", "--threshold", "0.8"]  # fmt: skip
    with pytest.raises(SystemExit, match="needs --model"):
        main([*argv, "--out", str(tmp_path / "none")])
    assert not (tmp_path / "none").exists()
    out = tmp_path / "rows"
    assert main([*argv, "--out", str(out), "--model", str(tiny_model)]) == 0
    rois = [json.loads(line) for line in (out / "rois.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    assert [r["source"] for r in rois] == ["attention", "attention"] and summary["attention"] == 2
    # The ROI is the mined box grown like a known one, not the annotation's target.
    miner = AttentionMiner(str(tiny_model), MinerConfig(layers=(-1,), threshold=0.8), budget=TINY)
    for roi in rois:
        with Image.open(synth_dir / "images" / Path(roi["image"]).name) as handle:
            image = handle.convert("RGB")
        mined = miner.mine(image, _question(synth_dir, roi["id"])).box
        frame = RoiFrame.of(load_cos_protocol(), image.size, "qwen2_5_vl", TINY)
        reply = frame.write(roi_from_box(mined, image.size, RoiShape()))
        assert roi["reply"] == reply
        expected, _ = frame.read(parse_roi(reply).values)
        assert roi["roi"] == pytest.approx([round(v, 2) for v in expected])


def _question(synth_dir, ann_id):
    import json

    for line in (synth_dir / "annotations.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["id"] == ann_id:
            return row["question"]
    raise KeyError(ann_id)
