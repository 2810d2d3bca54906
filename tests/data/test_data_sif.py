"""SIFThinker data: reverse-expansion chains, SFT rows, RL rows, the `cof data sif` command."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from cof_plugins.core.depth import BoxMeans, load_depth
from cof_plugins.core.sif import parse_sif
from cof_plugins.data.sif_chain import (
    ChainConfig,
    build_chain,
    distractor,
    expand,
    expansions,
    merge_overlaps,
)
from cof_plugins.rewards.geometry import FULL_IMAGE, iou


def test_expand_and_merge_by_hand():
    # centre (0.5, 0.5), half sides 0.1 * 1.5 = 0.15 -> [0.35, 0.65]
    assert expand((0.4, 0.4, 0.6, 0.6), 1.5) == pytest.approx((0.35, 0.35, 0.65, 0.65))
    # x: centre 0.95, half 0.05 * 3 = 0.15 -> [0.8, 1.1] -> [0.8, 1.0] (clipped)
    # y: centre 0.1, half 0.1 * 3 = 0.3 -> [-0.2, 0.4] -> [0.0, 0.4] (clipped)
    assert expand((0.9, 0.0, 1.0, 0.2), 3.0) == pytest.approx((0.8, 0.0, 1.0, 0.4))
    merged = merge_overlaps([(0, 0, 0.3, 0.3), (0.2, 0.2, 0.5, 0.5), (0.8, 0.8, 0.9, 0.9)])
    assert merged == [(0, 0, 0.5, 0.5), (0.8, 0.8, 0.9, 0.9)]
    # A chain of overlaps merges transitively into one box.
    assert merge_overlaps([(0, 0, 0.3, 0.1), (0.6, 0, 1, 0.1), (0.2, 0, 0.7, 0.1)]) == [
        (0, 0, 1, 0.1)
    ]


def test_expansions_grow_to_the_full_image():
    steps = expansions([(0.1, 0.1, 0.2, 0.2), (0.7, 0.7, 0.8, 0.8)], ChainConfig())
    assert steps[-1] == [FULL_IMAGE]
    assert len(steps[0]) == 2  # the first expansion keeps the two targets apart
    areas = [sum((b[2] - b[0]) * (b[3] - b[1]) for b in step) for step in steps]
    assert areas == sorted(areas)


def test_distractor_avoids_the_targets():
    targets = [(0.4, 0.4, 0.5, 0.5)]
    for seed in range(20):
        box = distractor(targets, random.Random(seed), ChainConfig())
        assert box is not None and iou(box, targets[0]) < 0.001
    assert distractor([(0, 0, 1, 1)], random.Random(0), ChainConfig()) is None


def test_chain_reads_from_the_full_image_to_the_targets():
    means = BoxMeans(np.linspace(0, 1, 100).reshape(10, 10))
    targets = [(0.1, 0.1, 0.2, 0.3)]
    roles = set()
    for seed in range(12):
        chain, _ = build_chain(targets, means, random.Random(seed))
        names = [s.role for s in chain]
        roles.add(tuple(names))
        assert names[0] == "full" and names[-1] == "target" and "wider" in names
        assert chain[-1].boxes == tuple(targets)
        for step in chain:
            assert step.depths == tuple(round(means.mean(b), 3) for b in step.boxes)
    assert roles == {("full", "wider", "target"), ("full", "distractor", "wider", "target")}


def test_fewer_decimals_round_boxes_outwards():
    from cof_plugins.data.sif_chain import _snap

    # x1, y1 down; x2, y2 up: the box never shrinks off its target.
    assert _snap((0.123, 0.456, 0.781, 0.9999), 2) == (0.12, 0.45, 0.79, 1.0)
    assert _snap((0.12, 0.45, 0.79, 1.0), 2) == (0.12, 0.45, 0.79, 1.0)  # already exact
    assert _snap((0.123, 0.4, 0.5, 0.6), 3) == (0.123, 0.4, 0.5, 0.6)
    means = BoxMeans(np.linspace(0, 1, 100).reshape(10, 10))
    chain, _ = build_chain([(0.123, 0.2, 0.31, 0.377)], means, random.Random(1),
                           ChainConfig(decimals=2))  # fmt: skip
    target = chain[-1].boxes[0]
    assert target == (0.12, 0.2, 0.31, 0.38)
    for step in chain:
        for value in (*step.depths, *(v for box in step.boxes for v in box)):
            assert round(value, 2) == value
    with pytest.raises(ValueError, match="decimals"):
        ChainConfig(decimals=4)


def test_sft_rows_are_well_formed_and_true_to_the_maps(sif_data):
    rows = json.loads((sif_data / "train.json").read_text())
    scenes = [json.loads(line) for line in (sif_data / "scenes.jsonl").read_text().splitlines()]
    assert len(rows) == len(scenes) == 6
    for row, scene in zip(rows, scenes, strict=True):
        roles = [m["role"] for m in row["messages"]]
        assert roles == ["system", "user", "assistant"]
        assert row["messages"][1]["content"].count("<image>") == 2
        assert row["images"] == [scene["image"], scene["depth_color"]]
        parsed = parse_sif(row["messages"][2]["content"])
        assert parsed.well_formed and parsed.answer == scene["answer"]
        assert parsed.areas[-1].valid_boxes == [tuple(b) for b in scene["gt_boxes"]]
        means = BoxMeans(load_depth(sif_data / scene["depth_gray"]))
        for area in parsed.areas:
            for box in area.boxes:
                assert box.depth == pytest.approx(means.mean(box.bbox), abs=5e-4)
        assert row["meta"]["normalized_solution"][0][:4] == scene["gt_boxes"][0]


def test_rl_rows_load_in_verl(sif_data, tiny_model, tmp_path):
    import pyarrow.parquet as pq
    from omegaconf import OmegaConf
    from transformers import AutoProcessor, AutoTokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset

    table = pq.read_table(sif_data / "rl.parquet").to_pylist()
    info = table[0]["extra_info"]
    assert (sif_data / "scenes.jsonl").exists() and info["depth_map"].startswith(str(sif_data))
    assert table[0]["prompt"][1]["content"].count("<image>") == 1  # RGB only, as the release
    cfg = OmegaConf.create({"max_prompt_length": 4096, "cache_dir": str(tmp_path / "cache"),
                            "filter_overlong_prompts_workers": 1})  # fmt: skip
    tok, proc = AutoTokenizer.from_pretrained(tiny_model), AutoProcessor.from_pretrained(tiny_model)
    ds = RLHFDataset(str(sif_data / "rl.parquet"), tok, cfg, proc)
    item = ds[2]
    assert item["agent_name"] == "single_turn_agent" and item["index"] == 2
    assert np.asarray(item["extra_info"]["gt_boxes"]).shape[1] == 4


def _cli(*argv: str) -> int:
    from cof_plugins.cli import main

    try:
        return main(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else str(exc.code)


def test_cli_refuses_to_overwrite_and_replaces_atomically(tmp_path, monkeypatch):
    out = tmp_path / "sif"
    assert _cli("data", "sif", str(out), "-n", "2", "--rl-depth-image") == 0
    rows = json.loads((out / "train.json").read_text())
    assert len(rows) == 2 and (out / "provenance.json").is_file()
    refused = _cli("data", "sif", str(out), "-n", "3")
    assert "--overwrite" in str(refused)
    # A failure halfway leaves the old folder as it was and no temporary folder behind.
    import cof_plugins.data.sif_write as writer

    def broken(*args, **kwargs):
        raise ValueError("disk full")

    monkeypatch.setattr(writer, "write_rl_parquet", broken)
    assert "disk full" in str(_cli("data", "sif", str(out), "-n", "3", "--overwrite"))
    assert len(json.loads((out / "train.json").read_text())) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sif"]
    monkeypatch.undo()
    assert _cli("data", "sif", str(out), "-n", "3", "--overwrite") == 0
    assert len(json.loads((out / "train.json").read_text())) == 3


def test_cli_from_annotations_reports_bad_rows(sif_data, tmp_path):
    scenes = [json.loads(line) for line in (sif_data / "scenes.jsonl").read_text().splitlines()]
    good = {k: scenes[0][k] for k in ("image", "question", "answer", "gt_boxes")}
    rows = [
        {**good, "depth_image": scenes[0]["depth_gray"]},
        {**good, "depth_image": scenes[0]["depth_gray"], "gt_boxes": [[10, 20, 30, 40]]},
        {**good, "depth_image": "depth/missing.png"},
        {"image": good["image"]},
    ]
    src = sif_data / "ann_test.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "from_ann"
    try:
        assert _cli("data", "sif", str(out), "--from", str(src)) == 1  # problems -> exit 1
    finally:
        src.unlink()
    assert len(json.loads((out / "train.json").read_text())) == 1
