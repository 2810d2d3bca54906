"""The tiny tokenizer built for SIFThinker: its block tags are single, decodable tokens."""

from __future__ import annotations

import pytest

from cof_plugins.testbed.tiny_model import SIF_TAGS, build_tokenizer


def test_sifthinker_tags_are_single_tokens_that_survive_decoding():
    tok = build_tokenizer(method="sifthinker")
    for tag in (*SIF_TAGS, "0.0", "0.5", "0.25", "0.07", "1.0"):
        assert len(tok(tag, add_special_tokens=False)["input_ids"]) == 1
    assert tok.tokenize("0.123,0.5]") == ["0.12", "3", ",", "0.5", "]"]
    text = '<think><area>[{"bbox_2d":[0.1,0.2,0.3,0.4],"depth":0.5}]</area><text>a</text></think>'
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == text  # verl decodes rewards this way
    with pytest.raises(ValueError, match="cof or sifthinker"):
        build_tokenizer(method="chain-of-spot")
