"""One ``cof eval`` per run directory: a lock file naming its holder.

Two processes evaluating one run dir would both run every missing sample and race on
run.json (one session record lost). ``RunLock`` takes an exclusive ``flock`` on
``<run dir>/.cof-eval.lock`` and writes its holder (pid, host, start time, command) into it.
A second ``cof eval`` finds the lock held and refuses, naming the holder, before any model
is loaded.

The kernel releases a ``flock`` when its process dies, however it dies (kill -9, OOM, a
lost node), so a lock left by a dead process is free again by construction: the next run
takes it (race-free: the kernel grants it to exactly one process) and logs whose it was.
The file's content is only a description for humans; the lock itself is the ``flock``.
On network filesystems ``flock`` is as reliable as the mount makes it (NFSv4 maps it to
byte-range locks).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from cof_plugins.eval.store import RunDirError

log = logging.getLogger(__name__)

LOCK_FILE = ".cof-eval.lock"


class RunLock:
    """Exclusive ownership of a run directory for one process; use as a context manager."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None
        self.previous: dict[str, Any] | None = None  # a dead holder's record, if any

    def acquire(self) -> RunLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunDirError(f"cannot create {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise RunDirError(
                f"{self.path.parent} is in use by another `cof eval` ({describe(holder)}); "
                "wait for it to finish, or stop it, or use another --run-dir"
            ) from None
        self.previous = _read(fd) or None
        if self.previous:
            log.warning(
                "took over the lock of %s, left by a process that is no longer running (%s)",
                self.path.parent, describe(self.previous),
            )  # fmt: skip
        _write(fd, holder_record())
        self._fd = fd
        return self

    def release(self) -> None:
        """Empty the holder record and drop the lock (the file stays; deleting it would race)."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder_record() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(sys.argv)[:300],
    }


def describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "holder unknown: the lock file is empty"
    return f"pid {holder.get('pid')} on host {holder.get('host')}, started {holder.get('started')}"


def _read(fd: int) -> dict[str, Any]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, 4096)
        record = json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _write(fd: int, record: dict[str, Any]) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(record) + "\n").encode("utf-8"))
    os.fsync(fd)
