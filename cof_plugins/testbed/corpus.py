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


def training_corpus(lines: int = 4000, seed: int = 0, method: str = "cof") -> Iterator[str]:
    """Protocol texts, tool-call JSON with numbers, and short questions and answers.

    ``method="sifthinker"`` adds SIFThinker replies (areas of boxes with depth, template
    sentences) so that the tiny tokenizer has merges for them. Presets of other methods
    (those with an ``extra.method``) stay out of the CoF corpus, which is unchanged by them.
    """
    rng = random.Random(seed)
    if method == "sifthinker":
        yield from sif_corpus(lines, seed)
    elif method != "cof":
        raise ValueError(f"unknown tiny-model method {method!r}; use cof or sifthinker")
    for name in available_protocols():
        proto = load_protocol(name)
        if proto.extra.get("method", "cof") not in ("cof", method):
            continue
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


def sif_corpus(lines: int, seed: int) -> Iterator[str]:
    """SIFThinker-shaped replies and questions about the depth scenes."""
    from cof_plugins.core.protocol import load_protocol
    from cof_plugins.core.sif import PROTOCOL, format_area, format_reply
    from cof_plugins.data.sif_chain import ROLES, Step, step_text
    from cof_plugins.testbed.depth_scenes import SHAPES
    from cof_plugins.testbed.synth import COLOURS

    rng = random.Random(seed + 1)
    yield str(load_protocol(PROTOCOL).extra["depth_user_suffix"])
    words = [*COLOURS, *SHAPES]
    for _ in range(lines // 2):
        steps = []
        for role in ROLES:
            box = sorted(round(rng.random(), 3) for _ in range(2))
            box = (box[0], box[0], box[1], box[1])
            depth = round(rng.random(), 3)
            subject = f"the {rng.choice(sorted(COLOURS))} {rng.choice(SHAPES)}"
            text = step_text(Step(role, (box,), (depth,)), subject, rng.choice(words))
            steps.append((format_area([(box, depth)]), text))
        yield format_reply(steps, rng.choice(words))
