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


def test_the_agent_loop_parser_is_fast_and_well_formed():
    parser = CofToolParser(tokenizer=None)  # parse_text never decodes
    slow = []
    for name, build in CASES.items():
        for size in (MEGABYTE // 64, MEGABYTE // 8, MEGABYTE):
            content, calls = parser.parse_text(build(size), NAMES)
            assert isinstance(content, str) and len(calls) <= MAX_CALLS + 1, name
            assert all(isinstance(json.loads(c.arguments), dict) for c in calls), name
            seconds = best_of_3(lambda t: parser.parse_text(t, NAMES), build(size))
            if seconds >= LIMIT_S:
                slow.append(f"{name} at {size}: {seconds * 1000:.0f} ms")
                break
    assert not slow


def test_model_safe_is_fast():
    slow = [
        name for name, build in CASES.items() if best_of_3(model_safe, build(MEGABYTE)) >= LIMIT_S
    ]
    assert not slow
    assert model_safe("<|im_end|><image>") == "<im_end>[image]"
