"""Chain-of-Spot rows through LLaMA-Factory: both replies carry loss, no user turn does."""

from __future__ import annotations

import json

from PIL import Image

from cof_plugins.core.frame import PixelBudget
from cof_plugins.data.cos import CosDataConfig, write
from cof_plugins.llamafactory.config import read_config
from cof_plugins.llamafactory.train import prepare

from .conftest import RECIPES

RECIPE = RECIPES / "chain_of_spot_tiny_cpu.yaml"


def _data(synth_dir, tmp_path):
    """Synthetic scenes plus one image with three questions (so other rounds follow)."""
    rows = [json.loads(line) for line in (synth_dir / "annotations.jsonl").read_text().splitlines()]
    Image.new("RGB", (300, 200), "gray").save(tmp_path / "shared.png")
    shared = {"image": str(tmp_path / "shared.png"), "options": ["red", "blue"], "answer": "B"}
    rows += [{**shared, "id": f"s{k}", "question": f"Question {k}?", "bbox": [9, 9, 30, 30]}
             for k in range(3)]  # fmt: skip
    (tmp_path / "ann.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = CosDataConfig(budget=PixelBudget(3136, 50176))
    write(tmp_path / "ann.jsonl", tmp_path / "rows", cfg, image_dir=synth_dir)
    return tmp_path / "rows"


def test_both_chain_of_spot_replies_are_trained(tiny_model, synth_dir, tmp_path):
    from cof_plugins.llamafactory.preview import encode_rows

    data = _data(synth_dir, tmp_path)
    overrides = [f"model_name_or_path={tiny_model}", f"dataset_dir=cof:{data}",
                 f"output_dir={tmp_path / 'out'}"]  # fmt: skip
    rows, tok = encode_rows(read_config(prepare(RECIPE, overrides)))
    written = json.loads((data / "train.json").read_text())
    assert len(rows) == len(written) == 13
    pad = tok.convert_tokens_to_ids("<|image_pad|>")
    for row, source in zip(rows, written, strict=True):
        replies = [m["content"] for m in source["messages"] if m["role"] == "assistant"]
        spans = [tok.decode(s) for s in row.trained_spans()]
        assert spans == [r + "<|im_end|>\n" for r in replies]  # the ROI box, then the answer
        assert spans[0].startswith("[0.") and spans[0].count(",") == 3
        assert pad not in [label for label in row.labels if label != -100]  # images: context
        assert row.input_ids.count(tok.convert_tokens_to_ids("<|vision_start|>")) == 2
    assert max(len(s["messages"]) for s in written) == 8  # the shared image's three rounds
