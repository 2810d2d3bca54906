"""Tiny CPU SFT through LLaMA-Factory for every family beyond the paper's, then `cof export`.

The same `cof sft` path as the paper's family (``test_sft_train.py``): the family's CoF
template, its plugin's frame resize, LoRA on its real model class; the export carries its
chat template and its budget.
"""

from __future__ import annotations

import json
import math

import pytest

from cof_plugins.core.families import BUILTIN, get_family

from .conftest import RECIPES
from .test_sft_train import _losses, cof


@pytest.mark.parametrize("family", [f for f in BUILTIN if f != "qwen2_5_vl"])
def test_sft_and_export(family, tiny_model_factory, cof_data, tmp_path):
    import torch
    import transformers

    from cof_plugins.core.chat_template import family_chat_template

    spec = get_family(family)
    model = tiny_model_factory(family)
    out = tmp_path / "run"
    assert cof("sft", str(RECIPES / "tiny_cpu.yaml"), f"model_name_or_path={model}",
               f"template={spec.cof_template}", f"dataset_dir=cof:{cof_data}",
               f"output_dir={out}", "max_steps=2",
               # tiny_cpu names Qwen2.5-VL's projector layers; every family's: train it whole.
               "lora_target=all", "additional_target=merger") == 0  # fmt: skip
    losses = _losses(out)
    assert len(losses) == 2 and all(math.isfinite(x) and x > 0 for x in losses)
    rank = json.loads((out / "cof_ranks/rank-0.json").read_text())
    assert spec.cof_template in rank["cof_templates"]

    merged = tmp_path / "merged"
    assert cof("export", "--adapter", str(out), "--out", str(merged)) == 0
    processor = transformers.AutoProcessor.from_pretrained(merged)
    assert processor.chat_template == family_chat_template(spec)
    size = processor.image_processor.size  # the tiny budget, as this family's processor reads it
    assert (size["shortest_edge"], size["longest_edge"]) == spec.processor_bounds(3136, 50176)
    after = transformers.AutoModelForImageTextToText.from_pretrained(merged)
    assert after.config.model_type == spec.hf_model_type
    before = transformers.AutoModelForImageTextToText.from_pretrained(model).state_dict()
    changed = [n for n, p in after.state_dict().items()
               if n in before and not torch.equal(p, before[n])]  # fmt: skip
    assert any("q_proj" in n for n in changed) and any("merger" in n for n in changed)
