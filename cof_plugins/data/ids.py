"""Sample ids as folder names, and the collisions that would make two samples share files.

``cof data synthesize`` writes each sample's images under ``images/<id as a folder name>``;
two ids that are equal, or that clean up to one name (``a/b`` and ``a b`` both become
``a_b``; ``A`` and ``a`` on a case-insensitive disk), would overwrite each other's frames
and crops. ``IdIndex`` finds them; synthesize refuses the run and ``cof data validate``
reports them, both naming the two rows.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def folder_name(sample_id: str, index: int) -> str:
    """The folder a sample's images go to; ids with no safe character use the row number."""
    name = _UNSAFE.sub("_", sample_id).strip(".")
    return name or f"row{index}"


class IdIndex:
    """Remembers each id's folder (case-folded) and the first row that used it."""

    def __init__(self) -> None:
        self._first: dict[str, tuple[int, str]] = {}

    def add(self, index: int, sample_id: str) -> str | None:
        """None for a new id, else a message naming the earlier row it collides with."""
        name = folder_name(sample_id, index)
        key = name.casefold()
        if key not in self._first:
            self._first[key] = (index, sample_id)
            return None
        row, other = self._first[key]
        if other == sample_id:
            return f"id {sample_id!r} repeats row {row}'s"
        return (
            f"id {sample_id!r} and row {row}'s id {other!r} both become the image folder "
            f"{name!r}, so one sample's images would overwrite the other's"
        )
