"""Atomic outputs: every file and folder a command writes appears complete or not at all.

A file is written under a temporary name in its destination's own folder (the same file
system, so the final rename is atomic), flushed and fsync'ed, then ``os.replace``d over the
destination. Interrupted (Ctrl-C, a crash, a full disk), the destination is untouched: the
previous output, if any, is still there and no reader ever sees a half-written file. A
folder is built the same way: a staging folder beside the destination, renamed into place
once complete; an existing destination is moved aside only at that moment, then removed.

``check_output`` decides, before any work, whether a destination may be written at all: it
refuses one that is an input of the command (or holds one, or lies inside an input folder),
an existing output unless the caller was told ``--overwrite``, and a folder that cannot be
written; each error names the argument and the fix. Temporary names start with a dot and
end in ``.partial-<pid>-<random>``, so no ``*.json`` or ``*.parquet`` glob picks them up.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "OutputError", "check_output", "check_writable", "open_atomic", "replace_dir",
    "replace_file", "write_bytes", "write_json", "write_text",
]  # fmt: skip

PathLike = str | os.PathLike[str]


class OutputError(ValueError):
    """An output that must not or cannot be written; the message names the argument and fix."""


def _temp_name(path: Path, kind: str) -> Path:
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def replace_file(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsync'ed and renamed over it.

    For writers that want a file name (PIL, pyarrow, OmegaConf). On an exception, or a
    KeyboardInterrupt, the temporary file is removed and ``path`` is left as it was.
    """
    final = Path(os.path.abspath(path))
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_name(final, "partial")
    try:
        yield temp
        _fsync_file(temp)
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    _fsync_dir(final.parent)


@contextlib.contextmanager
def open_atomic(path: PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """``open`` for writing whose result replaces ``path`` only when the block completes."""
    if mode not in ("w", "wb"):
        raise ValueError(f"open_atomic writes whole files: mode 'w' or 'wb', got {mode!r}")
    with (
        replace_file(path) as temp,
        open(temp, mode, encoding=None if "b" in mode else encoding) as handle,
    ):
        yield handle
        handle.flush()


def write_text(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    with open_atomic(path, "w", encoding) as handle:
        handle.write(text)
    return Path(path)


def write_bytes(path: PathLike, data: bytes) -> Path:
    with open_atomic(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def write_json(path: PathLike, obj: Any, indent: int | None = 2, **kwargs: Any) -> Path:
    """JSON text plus a final newline, written atomically."""
    return write_text(path, json.dumps(obj, indent=indent, **kwargs) + "\n")


@contextlib.contextmanager
def replace_dir(path: PathLike) -> Iterator[Path]:
    """Yield an empty staging folder beside ``path``; on success it becomes ``path``.

    Every file in it is fsync'ed first. An existing ``path`` (the caller has checked that it
    may be replaced) is renamed aside, the staging folder renamed into place, and the old one
    removed: until that moment the old output is whole. On an exception the staging folder
    is removed and ``path`` is untouched.
    """
    final = Path(os.path.abspath(path))
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = _temp_name(final, "partial")
    stage.mkdir()
    try:
        yield stage
        _sync_tree(stage)
        _swap_in(stage, final)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _fsync_dir(final.parent)


def _sync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            full = Path(folder) / name
            if not full.is_symlink():
                _fsync_file(full)
        _fsync_dir(Path(folder))


def _swap_in(stage: Path, final: Path) -> None:
    if not (final.exists() or final.is_symlink()):
        os.replace(stage, final)
        return
    if final.is_dir() and not final.is_symlink() and not any(final.iterdir()):
        os.replace(stage, final)  # rename(2) replaces an empty folder
        return
    old = _temp_name(final, "old")
    os.replace(final, old)
    try:
        os.replace(stage, final)
    except BaseException:
        os.replace(old, final)  # put the previous output back
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink()


def check_writable(folder: PathLike, arg: str) -> None:
    """Raise ``OutputError`` unless files can be created in ``folder`` (made if missing).

    Tried, not inferred from permission bits: root, read-only mounts and ACLs all answer
    truthfully to an actual attempt. The probe file is removed at once; nothing is created
    for a missing folder until the command writes.
    """
    target = Path(folder)
    probe_dir = target
    while not probe_dir.exists():
        if probe_dir.is_symlink():
            raise OutputError(f"{arg}: {probe_dir} is a broken symbolic link; fix or remove it")
        if probe_dir.parent == probe_dir:
            break
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise OutputError(
            f"{arg}: cannot create {target}: {probe_dir} is a file, not a folder; "
            "choose another location"
        )
    try:
        fd, name = tempfile.mkstemp(prefix=".cof-write-test-", dir=probe_dir)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise OutputError(
            f"{arg}: cannot write to {probe_dir} ({why}); choose a folder you can write to, "
            "or fix its permissions"
        ) from None
    os.close(fd)
    os.unlink(name)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_output(
    path: PathLike,
    *,
    arg: str,
    inputs: Iterable[PathLike | None] = (),
    overwrite: bool = False,
    folder: bool = False,
) -> Path:
    """Check that ``path`` (a file, or a folder when ``folder``) may be written; returns it.

    Refuses, naming ``arg``: an output that is one of ``inputs`` (also through links); for a
    folder, one that holds an input or lies inside an input folder (replacing it would
    delete the input); an existing output unless ``overwrite`` (an empty folder counts as
    absent); a file where a folder is expected and the reverse; a place that cannot be
    written (``check_writable``).
    """
    out = Path(path).expanduser()
    resolved = out.resolve()
    for item in inputs:
        if item is None:
            continue
        source = Path(item).expanduser()
        src = source.resolve()
        if _same(out, source) or resolved == src:
            raise OutputError(
                f"{arg} {str(out)!r} is also the input {str(source)!r}; writing it would "
                f"destroy the input; choose another {arg}"
            )
        if folder and _inside(src, resolved):
            raise OutputError(
                f"{arg} {str(out)!r} holds the input {str(source)!r}; replacing the folder "
                f"would delete it; choose an {arg} outside it"
            )
        if source.is_dir() and _inside(resolved, src):
            raise OutputError(
                f"{arg} {str(out)!r} lies inside the input folder {str(source)!r}; choose an "
                f"{arg} outside it"
            )
    _check_existing(out, arg, overwrite, folder)
    # Files and staging folders are created beside the output, then renamed: the parent
    # must take new entries even when the output itself exists.
    check_writable(Path(os.path.abspath(out)).parent, arg)
    return out


def _check_existing(out: Path, arg: str, overwrite: bool, folder: bool) -> None:
    if not (out.exists() or out.is_symlink()):
        return
    if folder and not out.is_dir():
        raise OutputError(f"{arg} {str(out)!r} is a file, not a folder; choose another {arg}")
    if not folder and out.is_dir():
        raise OutputError(f"{arg} {str(out)!r} is a folder, not a file; name a file")
    if folder and not any(out.iterdir()):
        return
    if not overwrite:
        what = "folder" if folder else "file"
        raise OutputError(
            f"{arg} {str(out)!r}: the {what} exists; pass --overwrite to replace it (the old "
            f"one stays until the new one is complete), or choose another {arg}"
        )
