"""A real, scriptable OpenAI-compatible judge server on loopback for the judge tests.

Each chat request takes the next ``Reply`` from ``script``; when the script is empty the
``default`` handler answers (by default a truthful judge that checks whether the reference
answer appears in the candidate answer). Every request is recorded with its arrival time,
and the peak number of requests in flight is tracked, so tests can assert on retries,
waits and concurrency as the server saw them.
"""

from __future__ import annotations

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
    status: int = 200
    text: str | None = "Judgement: 1"
    body: Any = None  # replaces the whole chat-completion body when given
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def verdict(value: int) -> Reply:
    return Reply(text=f"Judgement: {value}")


def error(status: int, retry_after: str | None = None) -> Reply:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Reply(status=status, body={"error": f"scripted {status}"}, headers=headers)


def empty_choices() -> Reply:
    return Reply(body={"id": "x", "object": "chat.completion", "choices": []})


def slow(delay_s: float) -> Reply:
    return Reply(delay_s=delay_s)


@dataclass
class Recorded:
    method: str
    path: str
    body: Any
    headers: dict[str, str]
    at: float


def case_fields(body: dict[str, Any]) -> dict[str, str]:
    """Question / reference / candidate parsed from the last user message of a request."""
    text = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    pairs = re.findall(r"^(Question|Reference answer|Candidate answer): (.*)$", text, re.M)
    return dict(pairs)


def truthful(body: dict[str, Any]) -> Reply:
    case = case_fields(body)
    ref, cand = case["Reference answer"].lower(), case["Candidate answer"].lower()
    return verdict(int(re.search(rf"\b{re.escape(ref)}\b", cand) is not None))


class JudgeServer:
    """Start with ``with JudgeServer() as srv:``; ``srv.url`` ends in ``/v1``."""

    def __init__(
        self, models: tuple[str, ...] = ("judge-model",), host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.models = list(models)
        self.script: list[Reply] = []
        self.default: Callable[[dict[str, Any]], Reply] = truthful
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._httpd.handle_error = lambda *a: None  # clients that timed out hang up
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

    def __enter__(self) -> JudgeServer:
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
            return step if step is not None else self.default(body)
        return Reply(status=404, body={"error": f"no route {method} {path}"})

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def wait(self, seconds: float) -> None:
        self._stop.wait(seconds)


def completion(text: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": text}
    return {"object": "chat.completion", "choices": [{"index": 0, "message": message}]}


def _make_handler(server: JudgeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            record = Recorded(method, self.path, body, dict(self.headers), time.monotonic())
            server.requests.append(record)
            server.enter()
            try:
                reply = server.respond(method, self.path, body)
                server.wait(reply.delay_s)
                self._send(reply)
            finally:
                server.leave()

        def _send(self, reply: Reply) -> None:
            payload = reply.body if reply.body is not None else completion(reply.text or "")
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in reply.headers.items():
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
