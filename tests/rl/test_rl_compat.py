"""verl 0.9.1's GLM-4.1V actor forward on transformers 5: broken as shipped, working patched."""

from __future__ import annotations

import importlib
import sys

import pytest

pytest.importorskip("verl")


def _embeds_inputs(tiny_model_factory):
    import transformers
    from PIL import Image

    path = tiny_model_factory("glm4v")
    processor = transformers.AutoProcessor.from_pretrained(path)
    model = transformers.AutoModelForImageTextToText.from_pretrained(path)
    text = "<|user|>\n<|begin_of_image|><|image|><|end_of_image|>what?<|assistant|>\n"
    inputs = processor(text=[text], images=[Image.new("RGB", (112, 84))], return_tensors="pt")
    return model, inputs


def test_verls_glm_embeddings_need_the_patch_and_match_transformers(tiny_model_factory):
    import torch

    from cof_plugins.verl import compat

    glm = importlib.import_module(compat.GLM_MODULE)
    model, inputs = _embeds_inputs(tiny_model_factory)
    args = (inputs["input_ids"], inputs["attention_mask"], inputs["pixel_values"], None,
            inputs["image_grid_thw"], None)  # fmt: skip
    original = getattr(glm._get_input_embeds, "__wrapped__", glm._get_input_embeds)
    with pytest.raises(AttributeError, match="shape"):
        original(model.model, *args)
    assert compat.patch(glm) and compat.patch(glm)  # idempotent
    embeds, _ = glm._get_input_embeds(model.model, *args)
    assert "forward" not in model.model.visual.__dict__  # the tower is left as it was
    with torch.no_grad():
        features = model.model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"])
        expected = model.model.get_input_embeddings()(inputs["input_ids"]).clone()
    mask = inputs["input_ids"][0] == model.config.image_token_id
    expected[0, mask] = torch.cat(features.pooler_output)
    assert torch.allclose(embeds, expected)


def test_glm_flops_are_estimated_from_the_text_config(tiny_model_factory):
    import transformers

    from cof_plugins.verl import compat

    flops = importlib.import_module(compat.FLOPS_MODULE)
    config = transformers.AutoConfig.from_pretrained(tiny_model_factory("glm4v"))
    estimate = flops.ESTIMATE_FUNC["glm4v"]
    original = getattr(estimate, "__wrapped__", estimate)
    with pytest.raises(AttributeError, match="hidden_size"):
        original(config, 100, [100], 1.0)
    assert compat.patch_flops(flops)
    counted = flops.ESTIMATE_FUNC["glm4v"](config, 100, [100], 1.0)
    assert counted == original(config.text_config, 100, [100], 1.0) and counted > 0


def test_the_hook_patches_a_module_when_it_is_first_imported(tmp_path, monkeypatch):
    """The post-import hook: nothing is imported early, the fix runs right after loading."""
    from cof_plugins.verl import compat

    (tmp_path / "cof_compat_probe.py").write_text("def _get_input_embeds(model):\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.setitem(compat.PATCHES, "cof_compat_probe", compat.patch)
    sys.modules.pop("cof_compat_probe", None)
    compat.install()
    assert "cof_compat_probe" not in sys.modules  # installing imports nothing
    probe = importlib.import_module("cof_compat_probe")
    assert getattr(probe._get_input_embeds, compat._MARK, False)
    compat.install()  # idempotent: one hook only
    assert sum(isinstance(f, compat._Hook) for f in sys.meta_path) == 1
    sys.modules.pop("cof_compat_probe", None)
