"""A real, scriptable OpenAI-compatible server on loopback, for tests and ``bench/``.

It stands in for a judge or a model server (vLLM, SGLang, ...) where one would need a GPU:
the HTTP is real (``ThreadingHTTPServer``, keep-alive, JSON bodies, status codes, headers),
only the replies are scripted. Each chat request takes the next entry of ``script``; once the
script is empty ``responder(body)`` answers. An entry is a ``Reply`` or plain text (a 200
completion with that text). Helpers build the replies tests need: model turns (``reply``),
judge verdicts (``verdict``, ``truthful_judge``), errors with a status and ``Retry-After``
(``error``), slow replies (``slow``) and empty choices (``empty_choices``).

Every request is recorded (method, path, JSON body, headers, arrival time) and the peak
number of requests in flight is kept, so tests can assert on retries and concurrency as the
server saw them.
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer; ``body`` (a JSON value or raw bytes) replaces the completion."""

    status: int = 200
    text: str = ""
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


Responder = Callable[[dict[str, Any]], "Reply | str"]


def reply(text: str) -> Reply:
    """A 200 chat completion whose assistant message is ``text``."""
    return Reply(text=text)


def verdict(value: int) -> Reply:
    """A judge's answer in the format ``cof_plugins.judge.prompt`` asks for."""
    return Reply(text=f"Judgement: {value}")


def error(status: int, retry_after: str | None = None) -> Reply:
    """An error status with an OpenAI-style error body and, optionally, ``Retry-After``."""
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Reply(status=status, body={"error": f"scripted {status}"}, headers=headers)


def empty_choices() -> Reply:
    """A 200 completion with no choices (servers send these under load)."""
    return Reply(body={"id": "x", "object": "chat.completion", "choices": []})


def slow(delay_s: float, then: Reply | str) -> Reply:
    """``then``, sent after ``delay_s`` seconds (cut short when the server stops)."""
    return dataclasses.replace(_as_reply(then), delay_s=delay_s)


def judge_case(body: dict[str, Any]) -> dict[str, str]:
    """Question / reference / candidate parsed from the last user message of a judge request."""
    text = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    pairs = re.findall(r"^(Question|Reference answer|Candidate answer): (.*)$", text, re.M)
    return dict(pairs)


def truthful_judge(body: dict[str, Any]) -> Reply:
    """A judge that says 1 when the reference answer appears as a word in the candidate."""
    case = judge_case(body)
    ref, cand = case["Reference answer"].lower(), case["Candidate answer"].lower()
    return verdict(int(re.search(rf"\b{re.escape(ref)}\b", cand) is not None))


def completion(text: str) -> dict[str, Any]:
    """A chat-completion body, with a word count standing in for the token count."""
    message = {"role": "assistant", "content": text}
    return {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"completion_tokens": len(text.split())},
    }


@dataclass
class Recorded:
    method: str
    path: str
    body: Any
    headers: dict[str, str]
    at: float  # time.monotonic() on arrival


class FakeOpenAIServer:
    """``with FakeOpenAIServer(responder) as srv:``; ``srv.url`` ends in ``/v1``."""

    def __init__(
        self,
        responder: Responder | None = None,
        models: tuple[str, ...] = ("model",),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.models = list(models)
        self.script: list[Reply | str] = []
        self.responder: Responder = responder or (lambda body: reply(""))
        self.requests: list[Recorded] = []
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = _Loopback((host, port), _make_handler(self))
        # A short poll interval keeps shutdown (one per test) fast.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def bodies(self) -> list[Any]:
        """JSON bodies of the chat requests, in arrival order."""
        return [r.body for r in self.chat_requests]

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # wakes handlers sleeping in a slow reply
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def respond(self, method: str, path: str, body: Any) -> Reply:
        if method == "GET" and path.endswith("/models"):
            data = [{"id": m, "object": "model"} for m in self.models]
            return Reply(body={"object": "list", "data": data})
        if method == "POST" and path.endswith("/chat/completions"):
            with self._lock:
                step = self.script.pop(0) if self.script else None
            return _as_reply(step if step is not None else self.responder(body))
        return Reply(status=404, body={"error": f"no route {method} {path}"})

    def record(self, entry: Recorded) -> None:
        with self._lock:
            self.requests.append(entry)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def wait(self, seconds: float) -> None:
        self._stop.wait(seconds)


class _Loopback(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # Benchmarks open many connections at once; the default backlog of 5 drops some of them.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that timed out hang up mid-reply


def _as_reply(step: Reply | str) -> Reply:
    return step if isinstance(step, Reply) else reply(step)


def _make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers allow

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            server.record(Recorded(method, self.path, body, dict(self.headers), time.monotonic()))
            try:
                try:
                    answer = server.respond(method, self.path, body)
                except Exception as exc:  # a broken script shows up in the reply, not silence
                    answer = Reply(status=500, body={"error": f"responder raised {exc!r}"})
                server.wait(answer.delay_s)
                self._send(answer)
            finally:
                server.done()

        def _send(self, answer: Reply) -> None:
            payload = answer.body if answer.body is not None else completion(answer.text)
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in answer.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def refused_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
