"""Sample ids as folder names, and the collisions that would make two samples share files.

``cof data synthesize`` writes each sample's images under ``images/<id as a folder name>``;
two ids that are equal, or that clean up to one name (``a/b`` and ``a b`` both become
``a_b``; ``A`` and ``a`` on a case-insensitive disk), would overwrite each other's frames
and crops. ``IdIndex`` finds them; synthesize refuses the run and ``cof data validate``
reports them, both naming the two rows.
"""

from __future__ import annotations

import re
from array import array

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def folder_name(sample_id: str, index: int) -> str:
    """The folder a sample's images go to; ids with no safe character use the row number."""
    name = _UNSAFE.sub("_", sample_id).strip(".")
    return name or f"row{index}"


class IdIndex:
    """Remembers each id's folder (case-folded) and the first row that used it.

    Compact on purpose (``cof data validate`` streams millions of rows): an open-addressing
    table of 64-bit hashes of the folder names, with the first row and 32 bits of its id's
    hash (to tell a repeat from a collision of two different ids) beside each; 16 bytes a
    slot, at most half full, so about 32 bytes an id where a dict of strings takes 300.
    Two different folder names colliding in 64 bits (about 1 in 10^9 for 200k ids) would
    be reported as a collision that is not one; nothing is ever missed.
    The earlier id is quoted when the caller keeps the ids (``ids``), as ``synthesize`` does.
    """

    def __init__(self, ids: dict[int, str] | None = None) -> None:
        self._keys, self._rows, self._own = _table(1024)  # key 0: an empty slot
        self._used = 0
        self._ids = ids

    def add(self, index: int, sample_id: str) -> str | None:
        """None for a new id, else a message naming the earlier row it collides with."""
        name = folder_name(sample_id, index)
        key = _digest(name.casefold()) | 1
        own = _digest(sample_id) & 0xFFFFFFFF
        slot = self._find(key)
        if self._keys[slot] == 0:
            self._insert(slot, key, index, own, sample_id)
            return None
        row = self._rows[slot]
        if self._own[slot] == own:
            return f"id {sample_id!r} repeats row {row}'s"
        clash = "so one sample's images would overwrite the other's"
        if self._ids is None:
            return f"id {sample_id!r} becomes the folder {name!r} as row {row}'s id does, {clash}"
        return (
            f"id {sample_id!r} and row {row}'s id {self._ids[row]!r} both become the image "
            f"folder {name!r}, {clash}"
        )

    def _find(self, key: int) -> int:
        mask = len(self._keys) - 1
        slot = (key >> 1) & mask
        keys = self._keys
        while keys[slot] and keys[slot] != key:
            slot = (slot + 1) & mask
        return slot

    def _insert(self, slot: int, key: int, row: int, own: int, sample_id: str) -> None:
        self._keys[slot], self._rows[slot], self._own[slot] = key, row, own
        self._used += 1
        if self._ids is not None:
            self._ids[row] = sample_id
        if 2 * self._used > len(self._keys):
            self._grow()

    def _grow(self) -> None:
        old = zip(self._keys, self._rows, self._own, strict=True)
        self._keys, self._rows, self._own = _table(2 * len(self._keys))
        for key, row, own in old:
            if key:
                slot = self._find(key)
                self._keys[slot], self._rows[slot], self._own[slot] = key, row, own


def _table(size: int) -> tuple[array, array, array]:
    return array("Q", [0]) * size, array("I", [0]) * size, array("I", [0]) * size


def _digest(text: str) -> int:
    """64 bits of Python's own string hash: stable within a process, which is all an index
    that lives for one command needs, and several times faster than a cryptographic hash."""
    return hash(text) & 0xFFFFFFFFFFFFFFFF
