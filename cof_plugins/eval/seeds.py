"""Seeds derived from names, stable across processes and Python versions.

Python's ``hash`` of a string changes per process (hash randomisation), so every seed here
comes from SHA-256 of the parts instead. Seeds are 31-bit so that every engine accepts them
(OpenAI-compatible servers and vLLM take an int, torch a 64-bit one).
"""

from __future__ import annotations

import hashlib


def derive_seed(*parts: object) -> int:
    """A 31-bit seed from any printable parts: ``derive_seed(run_seed, "draw", qid, 2)``."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big") & 0x7FFFFFFF
