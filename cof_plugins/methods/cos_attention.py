"""ROI mining from a VLM's own attention (beyond the release; ``cof data chain-of-spot
--roi-source attention``).

The release mined its ROIs with LRP-style relevance (the Transformer-MM-Explainability
notebook) on an unnamed model, with thresholds, aggregation and box fitting it never
published. This miner needs only a forward pass of the given checkpoint: it shows the model
the image with the Chain-of-Spot ROI request for the question (turn 1, as training and
evaluation do), reads the attention probabilities from the prompt's last ``query_tokens``
tokens to the image's tokens, aggregates them (over heads, then over the chosen layers) into
a map on the merged-token grid, keeps the cells at or above ``threshold`` times the map's
maximum and fits a box: around the kept cells connected to the peak (``fit="peak"``) or
around all of them (``fit="all"``). Cells are ``patch_size * merge_size`` frame pixels wide;
the box is returned in original pixels, and the data converter grows it into the ROI square
like a known target box. Every choice is in ``MinerConfig``.

Attention is not relevance (no gradients, no LRP rules, heads weighted equally), and a model
attends where its training made it attend: on the tiny random models of the tests the map is
noise, and what the tests show is that the plumbing finds the cells a model's attention
actually concentrates on (a model whose first layer is set to attend to one patch). Whether
attention of real weights makes good ROIs is to be measured on real weights (the mined
ROIs' overlap with known boxes is in the converter's ``summary.json``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from cof_plugins.core.frame import PixelBudget, get_family

AGGREGATES = ("mean", "max")
FITS = ("peak", "all")


@dataclass(frozen=True)
class MinerConfig:
    layers: tuple[int, ...] | None = None  # language-model layers (negative from the end); all
    head_aggregate: str = "mean"
    layer_aggregate: str = "mean"
    query_tokens: int = 1  # the prompt's last N tokens ask the question of the image
    threshold: float = 0.5  # keep cells >= threshold * the map's maximum
    fit: str = "peak"

    def __post_init__(self) -> None:
        for name, value, valid in (
            ("head_aggregate", self.head_aggregate, AGGREGATES),
            ("layer_aggregate", self.layer_aggregate, AGGREGATES),
            ("fit", self.fit, FITS),
        ):
            if value not in valid:
                raise ValueError(f"miner {name} {value!r} unknown; use one of {', '.join(valid)}")
        if not 0 < self.threshold <= 1:
            raise ValueError(f"miner threshold must be in (0, 1], got {self.threshold}")
        if self.query_tokens < 1:
            raise ValueError(f"miner query_tokens must be >= 1, got {self.query_tokens}")


def aggregate(
    attentions: Any, query_rows: list[int], image_cols: list[int], cfg: MinerConfig
) -> np.ndarray:
    """Per image token, the attention it receives: [layers](1, heads, q, k) -> (n_image,)."""
    chosen = _layers(len(attentions), cfg.layers)
    per_layer = []
    for index in chosen:
        att = np.asarray(attentions[index][0], dtype=np.float64)  # (heads, q, k)
        part = att[:, query_rows][:, :, image_cols]  # (heads, queries, image tokens)
        heads = part.mean(axis=0) if cfg.head_aggregate == "mean" else part.max(axis=0)
        per_layer.append(heads.mean(axis=0))
    stacked = np.stack(per_layer)
    return stacked.mean(axis=0) if cfg.layer_aggregate == "mean" else stacked.max(axis=0)


def _layers(count: int, wanted: tuple[int, ...] | None) -> list[int]:
    if wanted is None:
        return list(range(count))
    bad = [i for i in wanted if not -count <= i < count]
    if bad:
        raise ValueError(f"miner layers {bad} out of range: the model has {count} layers")
    return sorted({i % count for i in wanted})


def fit_box(grid: np.ndarray, cfg: MinerConfig) -> tuple[int, int, int, int]:
    """(col1, row1, col2, row2), end exclusive, around the kept cells of a 2-D map."""
    peak = float(grid.max())
    if not np.isfinite(peak) or peak <= 0:
        return 0, 0, grid.shape[1], grid.shape[0]  # no signal: the whole image
    kept = grid >= cfg.threshold * peak
    if cfg.fit == "peak":
        kept = _component(kept, np.unravel_index(int(np.argmax(grid)), grid.shape))
    rows, cols = np.nonzero(kept)
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def _component(kept: np.ndarray, start: tuple[int, ...]) -> np.ndarray:
    """The 4-connected cells of ``kept`` reachable from ``start`` (breadth first)."""
    out = np.zeros_like(kept)
    queue = deque([tuple(int(v) for v in start)])
    out[queue[0]] = True
    while queue:
        r, c = queue.popleft()
        for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            inside = 0 <= nr < kept.shape[0] and 0 <= nc < kept.shape[1]
            if inside and kept[nr, nc] and not out[nr, nc]:
                out[nr, nc] = True
                queue.append((nr, nc))
    return out


def cells_to_box(
    cells: tuple[int, int, int, int], frame: tuple[int, int], size: tuple[int, int], cell: int
) -> tuple[float, float, float, float]:
    """Grid cells (end exclusive) -> original pixels, through the frame they cover."""
    c1, r1, c2, r2 = cells
    fw, fh = frame
    sx, sy = size[0] / fw, size[1] / fh
    return (c1 * cell * sx, r1 * cell * sy, min(c2 * cell, fw) * sx, min(r2 * cell, fh) * sy)


@dataclass
class Mined:
    box: tuple[float, float, float, float]  # original pixels
    grid: np.ndarray  # the aggregated map, (rows, cols) of merged tokens


class AttentionMiner:
    """Mine ROIs with one loaded checkpoint (eager attention, so probabilities are returned)."""

    def __init__(
        self,
        model: str,
        cfg: MinerConfig,
        *,
        family: str = "qwen2_5_vl",
        budget: PixelBudget | None = None,
        protocol: str = "chain-of-spot",
    ) -> None:
        import torch
        import transformers

        from cof_plugins.core.cos import load_cos_protocol
        from cof_plugins.hf_checkpoint import set_image_budget

        self.cfg, self.family, self.budget = cfg, family, budget or PixelBudget()
        self.cos = load_cos_protocol(protocol)
        self.processor = transformers.AutoProcessor.from_pretrained(model)
        set_image_budget(self.processor.image_processor, self.budget)
        self.model = transformers.AutoModelForImageTextToText.from_pretrained(
            model, attn_implementation="eager"
        ).eval()
        self.torch = torch
        self.image_token = self.model.config.image_token_id

    def mine(self, image, question: str) -> Mined:
        """The box the attention to ``image`` picks out for ``question``."""
        from cof_plugins.core.chat_template import render
        from cof_plugins.core.zoom_step import make_frame

        frame = make_frame(image.convert("RGB"), self.family, self.budget)
        messages = [
            *self.cos.system_messages(),
            {"role": "user", "content": self.cos.roi_turn(question)},
        ]
        text = render(messages, add_generation_prompt=True)
        inputs = self.processor(text=[text], images=[frame], return_tensors="pt")
        with self.torch.inference_mode():
            out = self.model(**inputs, output_attentions=True)
        ids = inputs["input_ids"][0].tolist()
        image_cols = [i for i, t in enumerate(ids) if t == self.image_token]
        query_rows = list(range(len(ids) - self.cfg.query_tokens, len(ids)))
        values = aggregate(
            [a.float().numpy() for a in out.attentions], query_rows, image_cols, self.cfg
        )
        spec = get_family(self.family)
        _, h, w = (int(v) for v in inputs["image_grid_thw"][0])
        grid = values.reshape(h // spec.merge_size, w // spec.merge_size)
        cells = fit_box(grid, self.cfg)
        return Mined(cells_to_box(cells, frame.size, image.size, spec.factor), grid)
