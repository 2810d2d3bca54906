"""The Chain-of-Spot pipeline's plan: every stage is a command ``cof`` itself accepts.

The pipeline run end to end (``run_chain_of_spot``) trains for minutes; here only its plan
and options are checked, against the real ``cof`` parser (a renamed flag fails here).
"""

from __future__ import annotations

import pytest

from cof_plugins.cli import build_parser
from cof_plugins.methods.chain_of_spot import CosQuickstartConfig, centre_box_baseline, plan


def test_every_stage_parses_with_the_cof_parser(tmp_path):
    cfg = CosQuickstartConfig.from_options({"steps": 7, "train_samples": 12})
    stages = plan(tmp_path / "with space", cfg)
    parser = build_parser()
    names = [s.name for s in stages]
    assert names == ["tiny model", "train scenes", "held-out scenes", "rows", "sft",
                     "export sft", "eval base", "eval sft", "report"]  # fmt: skip
    for stage in stages:
        args = parser.parse_args(stage.argv)
        assert callable(args.func), stage.name
    sft = parser.parse_args(stages[4].argv)
    assert "max_steps=7" in stages[4].argv and str(sft.recipe).endswith(
        "chain_of_spot_tiny_cpu.yaml"
    )
    evals = [parser.parse_args(s.argv) for s in stages[6:8]]
    assert all(e.method == "chain-of-spot" and e.boxes for e in evals)
    assert str(tmp_path / "with space" / "data" / "rows") in " ".join(stages[3].argv)
    # Grid scenes, and the quickstart's own protocol file for rows and evaluation alike.
    assert all("--grid" in s.argv for s in stages[1:3])
    protocol = str(tmp_path / "with space" / "protocol.yaml")
    rows = parser.parse_args(stages[3].argv)
    assert rows.protocol == protocol and all(e.protocol == protocol for e in evals)


def test_the_protocol_file_rounds_the_roi_and_inherits_the_chosen_protocol(tmp_path, monkeypatch):
    from cof_plugins.core.cos import load_cos_protocol
    from cof_plugins.methods.chain_of_spot import write_protocol

    for parent, frame in (("chain-of-spot", "padded"), ("chain-of-spot-native", "native")):
        path = tmp_path / f"{parent}.yaml"
        write_protocol(path, CosQuickstartConfig(protocol=parent, decimals=2))
        cos = load_cos_protocol(path)
        assert (cos.decimals, cos.box_frame) == (2, frame)
    # A team's own file, named relative to the working folder, is inherited by its absolute
    # path: the written file lives elsewhere.
    own = tmp_path / "team" / "mine.yaml"
    own.parent.mkdir()
    own.write_text("name: mine\ninherit: chain-of-spot-native\nextra:\n  decimals: 4\n")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    write_protocol(tmp_path / "out" / "q.yaml", CosQuickstartConfig(protocol="team/mine.yaml"))
    cos = load_cos_protocol(tmp_path / "out" / "q.yaml")
    assert (cos.decimals, cos.box_frame) == (1, "native")


@pytest.mark.parametrize("bad", [0, 7, True, 1.5])
def test_bad_decimals_are_refused_naming_the_option(bad):
    with pytest.raises(ValueError, match="decimals must be a whole number 1-6"):
        CosQuickstartConfig.from_options({"decimals": bad})


def test_unknown_options_are_named_with_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown option\(s\) stepz; valid: .*steps"):
        CosQuickstartConfig.from_options({"stepz": 3})


def test_centre_box_baseline_counts_targets_a_centred_square_touches(tmp_path):
    import json

    rows, held = tmp_path / "rows", tmp_path / "heldout"
    rows.mkdir()
    held.mkdir()
    # Training ROIs are half the padded side: the centred square spans 25%-75%.
    (rows / "rois.jsonl").write_text(json.dumps({"roi": [0, 0, 50, 50], "size": [100, 100]}))
    targets = [[40, 40, 45, 45], [0, 0, 10, 10], [70, 70, 90, 90], [80, 0, 99, 20]]
    (held / "annotations.jsonl").write_text(
        "".join(json.dumps({"width": 100, "height": 100, "bbox": b}) + "\n" for b in targets)
    )
    assert centre_box_baseline(tmp_path) == 0.5
