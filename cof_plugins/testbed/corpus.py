"""Text the tiny tokenizer is trained on: the CoF protocol and the synthetic task's words."""

from __future__ import annotations

import random
from collections.abc import Iterator

from cof_plugins.core.protocol import available_protocols, load_protocol

WORDS = (
    "red green blue yellow purple orange black white cyan magenta circle square triangle "
    "star diamond cross the a of is what colour color shape which object letter text word "
    "left right top bottom above below small large image region zoom look closer answer "
    "option question target read written sign number there in on at"
).split()


def training_corpus(lines: int = 4000, seed: int = 0) -> Iterator[str]:
    """Protocol texts, tool-call JSON with numbers, and short questions and answers."""
    rng = random.Random(seed)
    for name in available_protocols(method="cof"):  # other methods' presets stay out
        proto = load_protocol(name)
        yield proto.system
        yield proto.user_suffix
        yield from proto.wrappers.values()
    for _ in range(lines):
        box = [rng.randint(0, 4000) for _ in range(4)]
        yield (
            "<think>" + " ".join(rng.choices(WORDS, k=12)) + "</think>\n<tool_call>\n"
            '{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": '
            + str(box)
            + "}}\n</tool_call>"
        )
        yield (
            "<answer>"
            + rng.choice("ABCD")
            + "</answer> ("
            + rng.choice("ABCD")
            + ") "
            + rng.choice(WORDS)
        )
