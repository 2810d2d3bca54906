"""Rows already in the canonical layout: only their box convention may be rewritten."""

from __future__ import annotations

from typing import Any

from cof_plugins.core.protocol import Protocol
from cof_plugins.data.styles.common import ConvertError


def from_canonical(row: Any, i: int, protocol: Protocol) -> dict:
    """The row itself, once it has the ``messages`` list every canonical row has."""
    if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
        raise ConvertError(f"row {i}: a canonical row needs a 'messages' list")
    return row
