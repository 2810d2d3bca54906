"""GRPO-SIF's progress bonus and the per-key store it needs under verl.

The release rewards improvement on a question it has seen before: with ``s`` the judge's
score now and ``s_prev`` a stored score for the same (question, image),
``reward = 2 s - s_prev`` when ``s >= s_prev``, else ``s`` (so the bonus is ``s - s_prev``
and never negative). Its trainer scores a whole batch at once and stores the batch mean of
this reward under the key of the batch's first prompt.

verl 0.9.1 scores one trajectory at a time while rollouts stream in, so there is no batch
to average. This store therefore differs from the release in two named ways:

1. **per key, per round**: every rollout adds its judge score ``s`` to (key, round), where
   the round is the policy version that sampled it (verl's ``global_steps``); the baseline
   of a rollout is the mean ``s`` of the latest *earlier* round of the same key. The
   siblings of one GRPO group never see each other's scores, so the order in which they
   are scored does not matter;
2. **the judge score, not the reward, is stored**: storing ``2 s - s_prev`` (as the
   release's batch mean does) lets the baseline climb above 1, after which no answer can
   earn the bonus again.

The store is SQLite (WAL, one row per key and round), so every reward worker process of a
run shares it; a recipe points ``progress_dir`` at the run's checkpoint folder. Without a
directory the store lives in the process's memory (tests, single-process runs).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Protocol

DB_NAME = "sif_progress.sqlite"
NO_ROUND = -1


def progress_reward(score: float, baseline: float | None) -> float:
    """``2 s - s_prev`` when a baseline exists and ``s >= s_prev``; otherwise ``s``."""
    if baseline is not None and score >= baseline:
        return 2.0 * score - baseline
    return score


class ProgressStore(Protocol):
    def baseline(self, key: str, round_: int) -> float | None:
        """Mean judge score of ``key`` in its latest round before ``round_``, or None."""
        ...

    def record(self, key: str, round_: int, score: float) -> None: ...


class MemoryProgress:
    """The store in one process's memory."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[int, list[float]]] = {}
        self._lock = threading.Lock()

    def baseline(self, key: str, round_: int) -> float | None:
        with self._lock:
            earlier = [r for r in self._rows.get(key, {}) if r < round_]
            if not earlier:
                return None
            total, n = self._rows[key][max(earlier)]
            return total / n

    def record(self, key: str, round_: int, score: float) -> None:
        with self._lock:
            row = self._rows.setdefault(key, {}).setdefault(round_, [0.0, 0])
            row[0] += float(score)
            row[1] += 1


class SqliteProgress:
    """The store in ``DIR/sif_progress.sqlite``, shared by every process of a run."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / DB_NAME
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS progress (key TEXT NOT NULL, round INTEGER NOT "
                "NULL, total REAL NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (key, round))"
            )
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise ValueError(
                f"progress_dir={directory!s}: cannot open the progress store {self.path} "
                f"({exc}); point progress_dir at a writable folder"
            ) from None
        self._lock = threading.Lock()

    def baseline(self, key: str, round_: int) -> float | None:
        with self._lock:
            row = self._db.execute(
                "SELECT total, n FROM progress WHERE key = ? AND round < ? "
                "ORDER BY round DESC LIMIT 1",
                (key, round_),
            ).fetchone()
        return None if row is None else row[0] / row[1]

    def record(self, key: str, round_: int, score: float) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO progress (key, round, total, n) VALUES (?, ?, ?, 1) "
                "ON CONFLICT (key, round) DO UPDATE SET total = total + excluded.total, "
                "n = n + 1",
                (key, round_, float(score)),
            )

    def close(self) -> None:
        self._db.close()


_stores: dict[str, ProgressStore] = {}
_stores_lock = threading.Lock()


def shared_store(directory: str | Path | None) -> ProgressStore:
    """The process-wide store for ``directory`` (memory when None), opened once."""
    name = str(Path(directory).resolve()) if directory else ""
    with _stores_lock:
        if name not in _stores:
            _stores[name] = SqliteProgress(name) if name else MemoryProgress()
        return _stores[name]


def round_of(extra_info: dict) -> int:
    """The policy version that sampled a rollout (verl's ``global_steps``), else NO_ROUND."""
    value = extra_info.get("global_steps")
    try:
        return int(value) if value is not None else NO_ROUND
    except (TypeError, ValueError):
        return NO_ROUND
