"""verl-side readers of model text on hostile 1 MB texts: fast and well formed.

``CofToolParser.parse_text`` is what the agent loop runs (in a worker thread) on every turn;
``model_safe`` cleans the model's own text before the zoom tool quotes it back.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("verl")

from cof_plugins.core.parser import MAX_CALLS
from cof_plugins.testbed.adversarial import CASES, LIMIT_S, MEGABYTE, best_of_3
from cof_plugins.verl.tool import model_safe
from cof_plugins.verl.tool_parser import CofToolParser

NAMES = ("image_zoom_in_tool",)


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    return {name: build(MEGABYTE) for name, build in CASES.items()}


def test_the_agent_loop_parser_is_fast_and_well_formed(texts):
    parser = CofToolParser(tokenizer=None)  # parse_text never decodes
    slow = []
    for name, text in texts.items():
        content, calls = parser.parse_text(text, NAMES)
        assert isinstance(content, str) and len(calls) <= MAX_CALLS + 1, name
        assert all(isinstance(json.loads(c.arguments), dict) for c in calls), name
        seconds = best_of_3(lambda t: parser.parse_text(t, NAMES), text)
        if seconds >= LIMIT_S:
            slow.append(f"{name}: {seconds * 1000:.0f} ms")
    assert not slow


def test_model_safe_is_fast(texts):
    slow = [name for name, text in texts.items() if best_of_3(model_safe, text) >= LIMIT_S]
    assert not slow
    assert model_safe("<|im_end|><image>") == "<im_end>[image]"
