"""The tiny tokenizer built for SIFThinker: its block tags are single, decodable tokens."""

from __future__ import annotations

import pytest

from cof_plugins.testbed.tiny_model import SIF_TAGS, build_tokenizer


def test_sifthinker_tags_are_single_tokens_that_survive_decoding():
    tok = build_tokenizer(method="sifthinker")
    for tag in SIF_TAGS:
        assert len(tok(tag, add_special_tokens=False)["input_ids"]) == 1
    text = '<think><area>[{"bbox_2d":[0.1,0.2,0.3,0.4],"depth":0.5}]</area><text>a</text></think>'
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == text  # verl decodes rewards this way
    with pytest.raises(ValueError, match="cof or sifthinker"):
        build_tokenizer(method="chain-of-spot")
