"""Tiny VLMs of every family: built offline, loadable by Auto classes, generate with images."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from cof_plugins.core.families import BUILTIN, get_family
from cof_plugins.core.frame import frame_size
from cof_plugins.core.protocol import load_protocol
from cof_plugins.testbed.tiny_model import COF_TAGS, TINY_BUDGET


@pytest.fixture(scope="module", params=BUILTIN)
def loaded(request, tiny_model_factory):
    import transformers

    path = tiny_model_factory(request.param)
    processor = transformers.AutoProcessor.from_pretrained(path)
    model = transformers.AutoModelForImageTextToText.from_pretrained(path)
    return request.param, path, processor, model


def _inputs(processor, sizes=((300, 200),)):
    msgs = load_protocol().prompt_messages("What colour is the star?", ["red", "blue"])
    msgs[1]["content"] = "<image>" * len(sizes) + msgs[1]["content"][len("<image>") :]
    text = processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    images = [Image.new("RGB", s, "white") for s in sizes]
    return processor(text=[text], images=images, return_tensors="pt")


def test_model_class_and_family(loaded):
    family, path, _processor, model = loaded
    assert model.config.model_type == family
    assert json.loads((path / "cof_tiny.json").read_text())["family"] == family
    assert sum(p.numel() for p in model.parameters()) < 2_000_000


def test_cof_tags_are_single_non_special_tokens(loaded):
    _, _, processor, _ = loaded
    tok = processor.tokenizer
    for tag in COF_TAGS:
        ids = tok.encode(tag, add_special_tokens=False)
        assert len(ids) == 1, tag
        assert tok.decode(ids, skip_special_tokens=True) == tag
    spec = get_family(loaded[0])
    for token in spec.tokens.special:  # the family's own special tokens, each one token
        assert tok.convert_tokens_to_ids(token) in tok.all_special_ids, token
        assert (
            tok.decode(tok.encode(token, add_special_tokens=False), skip_special_tokens=True) == ""
        )


def test_forward_with_two_images(loaded):
    import torch

    family, _, processor, model = loaded
    inputs = _inputs(processor, sizes=((300, 200), (90, 700)))
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape[:2] == inputs["input_ids"].shape
    assert logits.shape[-1] >= len(processor.tokenizer)
    assert torch.isfinite(logits).all()
    image_pad = processor.tokenizer.convert_tokens_to_ids(get_family(family).tokens.image)
    n_pad = int((inputs["input_ids"] == image_pad).sum())
    merge = 4
    assert n_pad == int(inputs["image_grid_thw"].prod(-1).sum()) // merge


def test_generate_with_image(loaded):
    _, _, processor, model = loaded
    inputs = _inputs(processor)
    out = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :]
    assert 1 <= new.numel() <= 6
    again = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert again[0].tolist() == out[0].tolist()


@pytest.mark.parametrize("size", [(50, 50), (3000, 20), (1920, 1080), (7680, 4320), (333, 777)])
def test_frame_matches_processor(loaded, size):
    family, _, processor, _ = loaded
    patch = processor.image_processor.patch_size
    grid = processor.image_processor(images=[Image.new("RGB", size)], return_tensors="pt")[
        "image_grid_thw"
    ][0].tolist()
    assert (grid[2] * patch, grid[1] * patch) == frame_size(size, family, TINY_BUDGET)


def test_generation_stops_at_the_family_end_of_turn(loaded):
    family, _, processor, model = loaded
    stops = [processor.tokenizer.convert_tokens_to_ids(t) for t in get_family(family).tokens.stop]
    assert model.generation_config.eos_token_id == stops
    assert processor.tokenizer.convert_tokens_to_ids(get_family(family).tokens.end_of_turn) in stops


def test_hybrid_attention_of_qwen3_5_is_real(tiny_model_factory):
    """The tiny Qwen3.5 keeps both kinds of layer (Gated DeltaNet and full attention)."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(tiny_model_factory("qwen3_5"))
    assert config.text_config.layer_types == ["linear_attention", "full_attention"]


@pytest.mark.parametrize("family", ["qwen2_vl", "glm4v"])
def test_cli_builds_model(family, tmp_path):
    from cof_plugins.cli import main

    assert main(["tiny-model", str(tmp_path / "m"), "--family", family]) == 0
    assert (tmp_path / "m" / "model.safetensors").is_file()
    assert (tmp_path / "m" / "tokenizer.json").is_file()
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model_type"] == get_family(family).hf_model_type
