"""Any OpenAI-compatible chat server (vLLM serve, SGLang, TGI, LMDeploy, ...).

The canonical messages are sent as chat messages whose ``<image>`` placeholders become
``image_url`` parts holding PNG data URLs of the frame-sized images; requests of one turn run
concurrently. The server applies the model's own chat template, so evaluate a checkpoint
that ships the canonical CoF template (``cof`` exports do) to match training exactly.
Failed requests are retried under the package's one HTTP retry policy (``core.retry``), the
judge's too: 408/425/429/5xx, connection errors and unusable replies are retried with
back-off, and a server's Retry-After is honoured.
"""

from __future__ import annotations

import base64
import io
import os
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PIL import Image

from cof_plugins.core.redact import install_log_filter, redact_text, redact_url
from cof_plugins.core.retry import AttemptError, RetryPolicy, call_with_retries
from cof_plugins.eval.backends import BackendUnavailable, Generation, Request, check_placeholders

_CACHE_SIZE = 64


class OpenAIBackend:
    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        url: str | None = None,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 600.0,
        retries: int = 2,
        seed: int = 0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``retry`` replaces the policy built from ``timeout_s`` and ``retries``; ``sleep``
        and ``clock`` (Unix time, for Retry-After dates) are injectable for tests."""
        import httpx

        url = url or os.environ.get("COF_EVAL_URL")
        if not url or not url.startswith(("http://", "https://")):
            raise BackendUnavailable(
                "the openai backend needs --url http://HOST:PORT/v1 (or COF_EVAL_URL), got "
                f"{redact_url(url)!r}"
            )
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.model_name, self.url, self.seed = model, url.rstrip("/"), seed
        install_log_filter("httpx")  # httpx logs each request's URL, credentials included
        self.concurrency = concurrency
        self.retry = retry or RetryPolicy(max_attempts=retries + 1, timeout_s=timeout_s)
        self._sleep, self._clock = sleep, clock
        self._rng = random.Random(seed)  # jitter; Random.random is safe across threads
        key = api_key or os.environ.get("COF_EVAL_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        timeout = httpx.Timeout(self.retry.timeout_s, connect=self.retry.connect_timeout_s)
        self._http = httpx.Client(
            headers=headers, timeout=timeout, trust_env=False,
            limits=httpx.Limits(max_connections=concurrency),
        )  # fmt: skip
        self._urls: OrderedDict[int, tuple[Image.Image, str]] = OrderedDict()

    def generate(self, requests: Sequence[Request], max_new_tokens: int) -> list[Generation]:
        bodies = [self._body(r, max_new_tokens) for r in requests]
        if len(bodies) <= 1:
            return [self._post(b) for b in bodies]
        with ThreadPoolExecutor(min(self.concurrency, len(bodies))) as pool:
            return list(pool.map(self._post, bodies))

    def _body(self, request: Request, max_new_tokens: int) -> dict[str, Any]:
        check_placeholders(request)
        images = iter(request.images)
        messages = [
            {"role": m["role"], "content": self._content(str(m.get("content") or ""), images)}
            for m in request.messages
        ]
        return {
            "model": self.model_name,
            "messages": messages,
            "max_tokens": max_new_tokens,
            "temperature": float(request.temperature),
            "seed": self.seed if request.seed is None else request.seed,
        }

    def _content(self, text: str, images) -> str | list[dict[str, Any]]:
        """Plain text stays a string; text with images becomes ordered parts."""
        if "<image>" not in text:
            return text
        parts: list[dict[str, Any]] = []
        for i, chunk in enumerate(text.split("<image>")):
            if i:
                parts.append(
                    {"type": "image_url", "image_url": {"url": self.data_url(next(images))}}
                )
            if chunk:
                parts.append({"type": "text", "text": chunk})
        return parts

    def data_url(self, image: Image.Image) -> str:
        """PNG data URL, cached: the frame is resent every turn of a trajectory."""
        key = id(image)
        hit = self._urls.get(key)
        if hit is not None and hit[0] is image:
            self._urls.move_to_end(key)
            return hit[1]
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        self._urls[key] = (image, url)
        while len(self._urls) > _CACHE_SIZE:
            self._urls.popitem(last=False)
        return url

    def _post(self, body: dict[str, Any]) -> Generation:
        """One chat completion under the retry policy; giving up raises BackendUnavailable."""
        try:
            return call_with_retries(
                lambda: self._attempt(body), self.retry, sleep=self._sleep, rng=self._rng
            )
        except AttemptError as exc:
            message = f"POST {self.url}/chat/completions failed: {exc}"
            raise BackendUnavailable(redact_text(message)) from None

    def _attempt(self, body: dict[str, Any]) -> Generation:
        import httpx

        try:
            resp = self._http.post(f"{self.url}/chat/completions", json=body)
        except httpx.HTTPError as exc:
            raise AttemptError(f"{type(exc).__name__}: {exc}") from None
        if resp.status_code >= 300:
            detail = f"HTTP {resp.status_code}: {resp.text[:200]!r}"
            retry_after = resp.headers.get("Retry-After")
            raise self.retry.status_error(resp.status_code, retry_after, detail, self._clock())
        try:
            return _generation(resp.json())
        except ValueError as exc:
            raise AttemptError(f"unusable reply: {exc}") from None

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model_name, "url": redact_url(self.url)}

    def close(self) -> None:
        self._http.close()


def _generation(body: Any) -> Generation:
    """The first choice's text; a body without one raises ValueError (retried: servers send
    empty choices under load)."""
    try:
        text = body["choices"][0]["message"]["content"] or ""
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"malformed chat completion ({exc!r}): {str(body)[:200]}") from None
    usage = body.get("usage") or {}
    tokens, prompt = usage.get("completion_tokens"), usage.get("prompt_tokens")
    return Generation(
        text, int(tokens) if tokens is not None else None,
        int(prompt) if prompt is not None else None,
    )  # fmt: skip
