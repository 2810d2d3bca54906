"""What a local checkpoint's weights are, cheaply: so a resumed eval never mixes two models.

A run directory records the model by path; retraining into the same path (the quickstart, a
sweep, any ``output_dir`` reused) leaves the path equal and the weights different. The
fingerprint reads each weight file's size and three 1 MiB samples (head, middle, tail): a few
MiB per file whatever the checkpoint's size, independent of timestamps (a copied checkpoint
resumes), and any retraining changes the sampled bytes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
SAMPLE = 1 << 20


def weights_fingerprint(model: str) -> str | None:
    """sha256 over the sampled weight files of a local model directory; None for a hub id or
    a served model name (nothing local to read) and for a directory without weight files."""
    root = Path(model)
    if not root.is_dir():
        return None
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        size = path.stat().st_size
        digest.update(f"{path.relative_to(root).as_posix()}\0{size}\0".encode())
        with path.open("rb") as fh:
            for offset in sorted({0, max(0, size // 2 - SAMPLE // 2), max(0, size - SAMPLE)}):
                fh.seek(offset)
                digest.update(fh.read(SAMPLE))
    return digest.hexdigest()
