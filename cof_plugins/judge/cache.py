"""A persistent verdict cache: one sqlite file shared by every process of a run.

sqlite in WAL mode lets many reader processes and one writer at a time work on the same
file without corrupting it, which is what several reward workers and an eval job need; a
JSONL file would need our own locking. Only real judge verdicts are stored, never
fallbacks, so an outage cannot poison later runs.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    key TEXT PRIMARY KEY,
    correct INTEGER NOT NULL,
    raw TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(model: str, prompt_version: str, question: str, answer: str, gt: str) -> str:
    """SHA-256 over every input that can change the verdict."""
    payload = json.dumps([model, prompt_version, question, answer, gt], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _setup(conn: sqlite3.Connection, busy_timeout_s: float) -> None:
    """WAL mode and the schema. Several processes opening a new file at once race for the
    journal-mode switch, which sqlite may refuse at once ("database is locked") without
    waiting for its busy timeout, so the setup is retried until that timeout runs out."""
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            conn.commit()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


class JudgeCache:
    """Thread-safe get/put of verdicts in a sqlite file (opened lazily on first use)."""

    def __init__(self, path: str | Path, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self._busy_timeout_s = busy_timeout_s
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, check_same_thread=False)
            _setup(conn, self._busy_timeout_s)
            self._conn = conn
        return self._conn

    def get(self, key: str) -> tuple[bool, str] | None:
        """Return (correct, raw reply) for ``key``, or None when absent."""
        with self._lock:
            row = (
                self._connect()
                .execute("SELECT correct, raw FROM verdicts WHERE key = ?", (key,))
                .fetchone()
            )
        return None if row is None else (bool(row[0]), row[1])

    def put(self, key: str, correct: bool, raw: str, model: str, prompt_version: str) -> None:
        """Store a verdict; a concurrent writer of the same key wins harmlessly."""
        with self._lock:
            conn = self._connect()
            conn.execute(
                "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?)",
                (key, int(correct), raw, model, prompt_version, time.time()),
            )
            conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._connect().execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
