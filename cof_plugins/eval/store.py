"""A run directory: ``run.json`` (settings, model, versions, seed) and ``results.jsonl``.

Results are appended one JSON line per sample and fsync'd after each batch, so killing a
run loses at most the samples still in flight. On reopening, a half-written last line (the
kill came mid-write) is cut off and that sample runs again; every key is kept once, so no
sample is scored twice. Readers (``cof report``, ``cof viz``) open the store with
``repair=False``: they skip a torn last line without touching a file a live run may be
writing. A run directory belongs to one set of settings: resuming with different settings
is refused, naming what differs (``eval.runner`` says which settings count). Every other
file in it (run.json, summary.json) is replaced atomically: a temporary file, fsync'd, then
renamed over the old one.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cof_plugins.core.atomic import write_bytes, write_text

log = logging.getLogger(__name__)

RESULTS = "results.jsonl"
RUN_INFO = "run.json"


class RunDirError(ValueError):
    """The run directory cannot be used as asked; the message says what to do."""


class ResultStore:
    """Append-only results of one run; ``done`` holds the keys already stored."""

    def __init__(self, run_dir: str | Path, *, repair: bool = True) -> None:
        self.dir = Path(run_dir)
        self.path = self.dir / RESULTS
        self.records: list[dict[str, Any]] = []
        self.done: set[str] = set()
        self.repaired = False
        self.repair = repair
        if self.path.exists():
            if not self.path.is_file():
                raise RunDirError(f"{self.path} is not a file; move it away to use {self.dir}")
            self._read()

    def _read(self) -> None:
        """Load stored lines; truncate a torn last line so the next append starts clean."""
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise RunDirError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        lines = data.splitlines(keepends=True)
        good_end = 0
        for number, line in enumerate(lines, start=1):
            record = _parse_line(line)
            if record is None:
                if number < len(lines):
                    raise RunDirError(
                        f"{self.path}: line {number} is not a result record, yet more follow; "
                        "the file was edited or the disk is damaged; fix or remove that line"
                    )
                break
            good_end += len(line)
            self._keep(record)
        if good_end < len(data) and not self.repair:
            log.info("%s: a half-written last line is skipped (a run may be writing it)", self.path)
        elif good_end < len(data):
            log.warning("%s: ignoring a half-written last line; that sample runs again", self.path)
            with open(self.path, "r+b") as handle:
                handle.truncate(good_end)
                handle.flush()
                os.fsync(handle.fileno())
            self.repaired = True

    def _keep(self, record: dict[str, Any]) -> None:
        key = record.get("key")
        if key in self.done:
            log.warning("%s: duplicate result for %s ignored", self.path, key)
            return
        self.done.add(key)
        self.records.append(record)

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        """Write new records durably; records whose key is already stored are skipped."""
        fresh = [r for r in records if r["key"] not in self.done]
        if not fresh:
            return 0
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            for record in fresh:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                self._keep(record)
            handle.flush()
            os.fsync(handle.fileno())
        return len(fresh)


def _parse_line(line: bytes) -> dict[str, Any] | None:
    """A complete line holding a record with a key, else None."""
    if not line.endswith(b"\n"):
        return None
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) and "key" in record else None


def read_run_info(run_dir: str | Path) -> dict[str, Any]:
    """run.json, checked to be what ``cof eval`` writes; a clear error otherwise."""
    path = Path(run_dir) / RUN_INFO
    if not path.is_file():
        raise RunDirError(
            f"{run_dir} is not an eval run directory (no {RUN_INFO}); run `cof eval` first"
        )
    return _load_info(path)


def _load_info(path: Path) -> dict[str, Any]:
    fix = (
        f"it was edited or damaged; restore it, or move {path.parent} away and start the run "
        "again in a new --run-dir"
    )
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise RunDirError(
            f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}); {fix}"
        ) from None
    if not isinstance(info, dict) or not isinstance(info.get("settings"), dict):
        raise RunDirError(f"{path} does not hold a run's settings (no 'settings' object); {fix}")
    if not isinstance(info.get("sessions", []), list):
        raise RunDirError(f"{path}: 'sessions' must be a list; {fix}")
    return info


def check_run_dir(run_dir: str | Path) -> None:
    """Refuse, before anything is loaded, a run dir that cannot hold a run."""
    path = Path(run_dir)
    if path.exists() and not path.is_dir():
        raise RunDirError(
            f"--run-dir {path} is a file, not a directory; pass a new or existing run directory"
        )
    info = path / RUN_INFO
    if info.exists() and not info.is_file():
        raise RunDirError(f"{info} is not a file; move it away to use {path} as a run directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(
            f"cannot create --run-dir {path}: {exc.strerror or exc}; choose a writable folder"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise RunDirError(f"--run-dir {path} is not writable; choose a writable folder")


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Replace ``path`` with ``data`` all at once (``core.atomic``: temp file, fsync, rename)."""
    return write_bytes(path, data) if isinstance(data, bytes) else write_text(path, data)


def write_run_info(run_dir: str | Path, info: dict[str, Any]) -> None:
    """Write run.json atomically (temp file, fsync, rename)."""
    text = json.dumps(info, indent=2, ensure_ascii=False, default=str) + "\n"
    write_atomic(Path(run_dir) / RUN_INFO, text)


def check_resume(
    run_dir: str | Path, settings: dict[str, Any], defaults: dict[str, Any] | None = None
) -> bool:
    """True when ``run_dir`` already holds this run; raises when it holds a different one.

    ``defaults`` (flattened keys) stand in for settings a run made by an older version did
    not record, so adding a setting does not orphan existing runs.
    """
    path = Path(run_dir) / RUN_INFO
    if not path.is_file():
        return False
    current = _flatten(json.loads(json.dumps(settings, default=str)))
    implied = {k: v for k, v in (defaults or {}).items() if k in current}
    stored = {**implied, **_flatten(_load_info(path)["settings"])}
    differs = sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))
    if differs:
        detail = "; ".join(f"{k}: {stored.get(k)!r} -> {current.get(k)!r}" for k in differs[:6])
        raise RunDirError(
            f"{run_dir} holds a run with other settings ({detail}); use a new --run-dir, "
            "or delete that directory to start over"
        )
    return True


def _flatten(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"loop": {"max_turns": 6}} -> {"loop.max_turns": 6}, so a mismatch names the leaf."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
