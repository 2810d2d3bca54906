"""Model backends: one interface, three engines, the same messages for all of them.

A request is the canonical conversation (``{"role", "content"}`` with ``<image>``
placeholders, as ``core.protocol`` writes it) plus the images in placeholder order, already
resized to the frame the model sees. A backend returns one ``Generation`` per request and is
asked for a whole turn of active trajectories at once, so engines that batch (transformers,
vLLM) or run requests concurrently (OpenAI-compatible servers) can.

Decoding is greedy at ``temperature`` 0. Above 0 each request samples with its own ``seed``
(``cof eval --samples k``): the same request gives the same text whatever else shares its
batch, so a resumed run repeats exactly what it would have done (transformers: a torch
Generator per request; vLLM: ``SamplingParams(seed=...)``; OpenAI-compatible servers: the
request's ``seed``, which servers honour on a best-effort basis).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image

BACKENDS = {
    "transformers": "cof_plugins.eval.backends.transformers:TransformersBackend",
    "openai": "cof_plugins.eval.backends.openai:OpenAIBackend",
    "vllm": "cof_plugins.eval.backends.vllm:VLLMBackend",
}


class BackendUnavailable(RuntimeError):
    """The engine a backend needs is not installed or cannot start; the message says how."""


@dataclass
class Request:
    messages: list[dict[str, Any]]
    images: list[Image.Image] = field(default_factory=list)
    temperature: float = 0.0
    seed: int | None = None


@dataclass(frozen=True)
class Generation:
    """One assistant turn; token counts are None when the engine does not report them.

    ``prompt_tokens`` is the length of the prompt the engine read for this turn, image
    tokens included (the efficiency view of ``cof report``).
    """

    text: str
    tokens: int | None
    prompt_tokens: int | None = None


class Backend(Protocol):
    name: str

    def generate(self, requests: Sequence[Request], max_new_tokens: int) -> list[Generation]:
        """Decode one turn for every request, results in request order."""
        ...

    def describe(self) -> dict[str, Any]:
        """Model and engine versions, recorded in run.json."""
        ...

    def close(self) -> None: ...


def make_backend(name: str, **kwargs: Any) -> Backend:
    """Build a backend by name; an unknown name lists the known ones."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; available: {', '.join(sorted(BACKENDS))}")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)


def check_placeholders(request: Request) -> int:
    """Number of ``<image>`` placeholders, checked against the images given."""
    count = sum(str(m.get("content") or "").count("<image>") for m in request.messages)
    if count != len(request.images):
        raise ValueError(
            f"request has {count} <image> placeholder(s) but {len(request.images)} image(s)"
        )
    return count
