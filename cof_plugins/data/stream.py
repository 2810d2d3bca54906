"""Read a data file one row at a time: a JSON list or JSONL, in memory bounded by one row.

``json.loads`` of a whole 2 GB list holds the text and every row at once (several times the
file's size); here a JSON list is read in chunks and each element decoded with
``json.JSONDecoder.raw_decode`` (the C scanner) as soon as it is complete. The buffer grows
geometrically when one element spans chunks, so a large row costs linear time, and an
element larger than ``MAX_ROW_BYTES`` is an error rather than a slow read of the whole file.

Every error names the file and where: a line and column for JSON syntax, a byte offset for
text that is not UTF-8.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

CHUNK = 1 << 20
MAX_ROW_BYTES = 1 << 28  # 256 MiB: no training row is this large; a malformed file can be
_WS = " \t\r\n"
_NUMBER = frozenset("0123456789.eE+-")
_DECODER = json.JSONDecoder()
# raw_decode errors that mean "the element continues past the buffer" when not at EOF.
_TRUNCATED = ("Unterminated string", "Invalid \\uXXXX", "Invalid \\escape")


class DataFileError(ValueError):
    """A data file that cannot be read as rows; the message names the file and the line."""


def not_utf8(path: Path, offset: int, exc: UnicodeDecodeError, where: str = "") -> DataFileError:
    bad = exc.object[exc.start : exc.start + 1].hex() if exc.object else "?"
    return DataFileError(
        f"{path}: not UTF-8 text (byte 0x{bad} at byte offset {offset}{where}); data files "
        "must be UTF-8: re-save it as UTF-8 (e.g. iconv -f latin1 -t utf-8 FILE > NEW)"
    )


def iter_rows(path: str | Path) -> Iterator[Any]:
    """Rows of a JSON list or JSONL file, one at a time, as they are (no validation)."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"data file {str(path)!r} does not exist; check --from / FILE")
    try:
        handle = open(path, "rb")  # noqa: SIM115  (closed by the generator below)
    except OSError as exc:
        raise DataFileError(f"cannot open data file {str(path)!r}: {exc.strerror}") from None
    return _rows(path, handle)


def _rows(path: Path, handle: IO[bytes]) -> Iterator[Any]:
    with handle:
        head = handle.read(4096)
        first = head.removeprefix(codecs.BOM_UTF8).lstrip(_WS.encode())[:1]
        handle.seek(0)
        if first == b"[":
            yield from _ArrayReader(path, handle).rows()
        else:
            yield from _jsonl(path, handle)


def _jsonl(path: Path, handle: IO[bytes]) -> Iterator[Any]:
    offset = 0
    for lineno, raw in enumerate(handle, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise not_utf8(path, offset + exc.start, exc, f", line {lineno}") from None
        offset += len(raw)
        if lineno == 1:
            line = line.removeprefix("\ufeff")
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFileError(
                f"{path}: line {lineno} is not a JSON object ({exc.msg}); a data file is either "
                "one JSON list or one JSON object per line (JSONL)"
            ) from None


class _ArrayReader:
    """Incremental reader of one top-level JSON list."""

    def __init__(self, path: Path, handle: IO[bytes]) -> None:
        self.path, self.handle = path, handle
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.buf, self.pos, self.eof = "", 0, False
        # Where the buffer starts in the file: lines and columns of the text already dropped.
        self.bytes_read, self.lines_before, self.column_before = 0, 0, 0
        self.chunk = CHUNK

    def _more(self) -> bool:
        """Append the next chunk to the buffer (dropping consumed text); False at EOF."""
        if self.eof:
            return False
        data = self.handle.read(self.chunk)
        try:
            text = self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise not_utf8(self.path, self.bytes_read + exc.start, exc) from None
        self.bytes_read += len(data)
        self.eof = not data
        newline = self.buf.rfind("\n", 0, self.pos)  # counted in place: no copy
        self.lines_before += self.buf.count("\n", 0, self.pos)
        self.column_before = (
            self.pos - newline - 1 if newline >= 0 else self.column_before + self.pos
        )
        self.buf, self.pos = self.buf[self.pos :] + text, 0
        return True

    def _skip_ws(self) -> str:
        """The next non-blank character ('' at EOF), reading more as needed."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WS:
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def _error(self, what: str, pos: int | None = None) -> DataFileError:
        pos = self.pos if pos is None else pos
        line = self.lines_before + self.buf.count("\n", 0, pos) + 1
        newline = self.buf.rfind("\n", 0, pos)
        column = pos - newline if newline >= 0 else self.column_before + pos + 1
        return DataFileError(f"{self.path}: not valid JSON at line {line} column {column}: {what}")

    def _element(self) -> Any:
        """Decode the element at ``pos``, growing the buffer until it is complete."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                truncated = exc.pos >= len(self.buf) - 8 or exc.msg.startswith(_TRUNCATED)
                if not self.eof and truncated and self._grow():
                    continue
                raise self._error(exc.msg, exc.pos) from None
            if self.eof or not self._may_continue(value, end) or not self._grow():
                self.pos = end
                return value

    def _may_continue(self, value: Any, end: int) -> bool:
        """A number decoded up to the buffer's end (or a partial "1." or "1e") may go on."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False  # objects, lists, strings and literals end unambiguously
        return all(c in _NUMBER for c in self.buf[end : end + 3])

    def _grow(self) -> bool:
        """Read more for an element that spans chunks. Each read is at least as long as the
        part already read, so a large element's buffer doubles and reading stays linear."""
        partial = len(self.buf) - self.pos
        if partial > MAX_ROW_BYTES:
            raise self._error(f"a row is larger than {MAX_ROW_BYTES >> 20} MiB (or unterminated)")
        self.chunk = max(CHUNK, partial)
        return self._more()

    def rows(self) -> Iterator[Any]:
        self._more()
        self._skip_ws()
        self.pos += 1  # the opening [
        if self._skip_ws() == "]":
            self.pos += 1
            return self._end()
        while True:
            if self._skip_ws() == "":
                raise self._error("the list is not closed with ]")
            yield self._element()
            self.chunk = CHUNK
            nxt = self._skip_ws()
            self.pos += 1
            if nxt == "]":
                return self._end()
            if nxt != ",":
                raise self._error("expected ',' or ']' after a row", self.pos - 1)

    def _end(self) -> None:
        if self._skip_ws():
            raise self._error("extra data after the closing ]")
