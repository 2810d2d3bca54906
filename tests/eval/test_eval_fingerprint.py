"""The weights fingerprint a run directory records: content, not path or timestamps."""

from __future__ import annotations

import os

from cof_plugins.eval.fingerprint import SAMPLE, weights_fingerprint


def test_only_local_folders_with_weights_have_a_fingerprint(tmp_path):
    assert weights_fingerprint("Qwen/Qwen2.5-VL-7B-Instruct") is None
    assert weights_fingerprint(str(tmp_path)) is None
    (tmp_path / "config.json").write_text("{}")
    assert weights_fingerprint(str(tmp_path)) is None
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(b"x" * 10)
    assert weights_fingerprint(str(tmp_path)) is not None


def test_head_middle_tail_size_and_names_count_but_timestamps_do_not(tmp_path):
    shard = tmp_path / "model.safetensors"
    body = bytearray(os.urandom(5 * SAMPLE))
    shard.write_bytes(body)
    first = weights_fingerprint(str(tmp_path))
    os.utime(shard, (0, 0))
    assert weights_fingerprint(str(tmp_path)) == first
    for where in (0, len(body) // 2, len(body) - 1):
        changed = bytearray(body)
        changed[where] ^= 1
        shard.write_bytes(changed)
        assert weights_fingerprint(str(tmp_path)) != first, where
    shard.write_bytes(body + b"\0")
    assert weights_fingerprint(str(tmp_path)) != first
    shard.write_bytes(body)
    shard.rename(tmp_path / "pytorch_model.bin")
    assert weights_fingerprint(str(tmp_path)) != first
