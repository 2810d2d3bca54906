"""Scripted turns for the hf rollout: a stand-in for a policy that already calls the tool.

A random tiny model never writes a parsable ``<tool_call>``, so on CPU the multi-turn zoom
path (parser, tool, crop re-encoded as an image, CoF reward, AGAR over a group) would never
run. ``COF_HF_ROLLOUT_SCRIPT`` names a JSON file of replies; the server then answers each
request with the next reply of its kind instead of sampling, *through the same server API*,
so everything downstream (agent loop, tool, reward, sampler, advantages, actor update) is
verl's real path. Scripted tokens are not samples of the model: this tests plumbing and
that the update moves weights, not that the policy learns. ``"__sample__"`` in the list
means "sample from the model for this turn".

File layout: ``{"first_turn": [...], "after_zoom": [...]}``; a turn whose prompt holds more
than one image (the question image plus a crop) is an ``after_zoom`` turn.
"""

from __future__ import annotations

import json
import os
from itertools import count
from pathlib import Path
from typing import Any

SCRIPT_ENV = "COF_HF_ROLLOUT_SCRIPT"
SAMPLE = "__sample__"
KINDS = ("first_turn", "after_zoom")


def load_script(path: str | Path) -> dict[str, list[str]]:
    """Read and check a script file; a clear error names what is wrong."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or set(data) - set(KINDS):
        raise ValueError(f"{SCRIPT_ENV}={path}: expected an object with keys {KINDS}")
    for kind in KINDS:
        replies = data.setdefault(kind, [SAMPLE])
        if not replies or not all(isinstance(r, str) for r in replies):
            raise ValueError(f"{SCRIPT_ENV}={path}: {kind!r} must be a non-empty list of strings")
    return data


class ScriptedTurns:
    """Hands out the script's replies in order, one counter per kind of turn."""

    def __init__(
        self,
        script: dict[str, list[str]],
        tokenizer: Any,
        vision_start: int | None,
        end_of_turn: str = "<|im_end|>",
    ):
        self.script = script
        self.tokenizer = tokenizer
        self.vision_start = vision_start
        self.end_of_turn = end_of_turn  # the family's end-of-turn token (core.families)
        self._counters = {kind: count() for kind in KINDS}

    @classmethod
    def from_env(
        cls, tokenizer: Any, vision_start: int | None, end_of_turn: str = "<|im_end|>"
    ) -> ScriptedTurns | None:
        path = os.environ.get(SCRIPT_ENV)
        return cls(load_script(path), tokenizer, vision_start, end_of_turn) if path else None

    def kind(self, prompt_ids: list[int]) -> str:
        images = sum(1 for t in prompt_ids if t == self.vision_start)
        return "after_zoom" if images > 1 else "first_turn"

    def reply(self, prompt_ids: list[int], budget: int) -> list[int] | None:
        """Token ids of the next scripted reply (ending in EOS), or None to sample."""
        kind = self.kind(prompt_ids)
        replies = self.script[kind]
        text = replies[next(self._counters[kind]) % len(replies)]
        if text == SAMPLE:
            return None
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        eos = self.tokenizer.convert_tokens_to_ids(self.end_of_turn)
        return [*ids, eos][:budget]
