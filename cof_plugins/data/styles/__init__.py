"""Other projects' trajectory formats, one module per style (``cof data convert --style``).

- ``function-call``: LLaMA-Factory sharegpt with ``function_call``/``observation`` turns
  (``function_call``);
- ``deepeyes``: OpenAI-style messages, crops returned by ``tool`` turns, absolute boxes
  (``deepeyes``);
- ``mini-o3``: relative boxes, crops of earlier crops (``mini_o3``);
- ``canonical``: rows already canonical; only ``--coords-from/--coords-to`` rewriting applies.

Observation turns that return images become the protocol's crop turn (``<image>`` + suffix),
so converted data shows the model the same text as RL and eval; a row without a system turn
gets the protocol's system prompt. A reader leaves boxes as the source wrote them; the
runner (``data.convert``) rewrites them from the style's convention to the family's.

``STYLES`` is the one table of names: the command line offers its names, the runner looks
styles up in it, and another format is one ``STYLES.register("name", Style(reader))`` away.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cof_plugins.core.protocol import Protocol
from cof_plugins.core.registry import Registry
from cof_plugins.data.styles.canonical import from_canonical
from cof_plugins.data.styles.deepeyes import from_deepeyes
from cof_plugins.data.styles.function_call import from_function_call
from cof_plugins.data.styles.mini_o3 import from_mini_o3

Reader = Callable[[Any, int, Protocol], dict]


@dataclass(frozen=True)
class Style:
    """How to read one format: ``read(row, index, protocol)`` -> canonical structure, and the
    box convention its files use (None: the family's own, as in data written for it)."""

    read: Reader
    coords: str | None = None


STYLES: Registry[Style] = Registry("conversion style")
STYLES.register("function-call", Style(from_function_call))
STYLES.register("deepeyes", Style(from_deepeyes, coords="abs"))
STYLES.register("mini-o3", Style(from_mini_o3, coords="rel1"))
STYLES.register("canonical", Style(from_canonical))
