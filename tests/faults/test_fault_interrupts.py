"""Writers interrupted mid-write (Ctrl-C, a kill, an exception) leave the previous output whole.

The subprocess cases run the real ``cof`` command on an input large enough to be caught
mid-write: the signal goes out once the command's temporary output exists on disk.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from cof_plugins.core.atomic import replace_dir, write_text
from cof_plugins.data.rows import write_rows

ROWS = 3000  # several seconds of frame encoding: time enough to be interrupted


def _many_annotations(tmp_path: Path, n: int = ROWS) -> Path:
    """``n`` annotations of one 448 px image (each row's frame is resized and encoded)."""
    image = tmp_path / "img.png"
    Image.effect_noise((448, 336), 60).convert("RGB").save(image)
    row = {"image": "img.png", "question": "What colour?", "options": ["red", "blue"],
           "answer": "A", "bbox": [10, 10, 60, 60]}  # fmt: skip
    path = tmp_path / "ann.jsonl"
    path.write_text("".join(json.dumps({**row, "id": f"q{i}"}) + "\n" for i in range(n)))
    return path


def _default_sigint() -> None:
    # A suite started in the background by a shell without job control (`cmd &` inside a
    # script) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt
    # handler: the command would finish as if Ctrl-C never came. A terminal's Ctrl-C
    # reaches a command with the default disposition; give the child that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "cof_plugins.cli", *args]
    return subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=_default_sigint,
    )  # fmt: skip


def _wait_for_partial(proc: subprocess.Popen, folder: Path, timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in folder.iterdir() if ".partial-" in p.name]
        if found:
            time.sleep(0.3)  # well inside the write
            return found[0]
        if proc.poll() is not None:
            pytest.fail(f"cof finished before it could be interrupted: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no temporary output appeared")


def _interrupt(proc: subprocess.Popen, sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, (out + err).decode()


def test_ctrl_c_during_to_parquet_keeps_the_previous_file(tmp_path, leftovers):
    ann = _many_annotations(tmp_path)
    out = tmp_path / "rl" / "train.parquet"
    out.parent.mkdir()
    out.write_bytes(b"PAR1 the previous, complete export")
    proc = _start("data", "to-parquet", "--from", str(ann), "--out", str(out), "--overwrite",
                  cwd=tmp_path)  # fmt: skip
    _wait_for_partial(proc, out.parent)
    code, text = _interrupt(proc, signal.SIGINT)
    assert code == 130 and "interrupted" in text and "Traceback" not in text
    assert out.read_bytes() == b"PAR1 the previous, complete export"
    assert leftovers(tmp_path) == []


def test_kill_during_to_parquet_keeps_the_previous_file(tmp_path):
    """SIGKILL runs no clean-up: the temporary file may stay, the output is untouched."""
    ann = _many_annotations(tmp_path)
    out = tmp_path / "train.parquet"
    out.write_bytes(b"previous")
    proc = _start("data", "to-parquet", "--from", str(ann), "--out", str(out), "--overwrite",
                  cwd=tmp_path)  # fmt: skip
    partial = _wait_for_partial(proc, tmp_path)
    code, _ = _interrupt(proc, signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert out.read_bytes() == b"previous"
    assert partial.name.startswith(".train.parquet.partial-")  # not a *.parquet a glob would read


def test_ctrl_c_during_synthesize_keeps_the_previous_folder(tmp_path, leftovers):
    ann = _many_annotations(tmp_path, 600)
    out = tmp_path / "sft"
    out.mkdir()
    (out / "train.json").write_text("[]\n")
    proc = _start("data", "synthesize", "--from", str(ann), "--out", str(out), "--overwrite",
                  cwd=tmp_path)  # fmt: skip
    _wait_for_partial(proc, tmp_path)
    code, text = _interrupt(proc, signal.SIGINT)
    assert code == 130 and "Traceback" not in text
    assert [p.name for p in out.iterdir()] == ["train.json"]
    assert (out / "train.json").read_text() == "[]\n"
    assert leftovers(tmp_path) == []


def test_an_exception_mid_rows_keeps_the_previous_file(tmp_path, leftovers):
    path = write_rows(tmp_path / "rows.jsonl", [{"a": 1}, {"a": 2}])
    before = path.read_bytes()

    def rows():
        yield {"a": 3}
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_rows(path, rows())
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_an_exception_while_building_a_folder_keeps_the_previous_one(tmp_path, leftovers):
    out = tmp_path / "out"
    out.mkdir()
    write_text(out / "old.txt", "old")
    with pytest.raises(RuntimeError), replace_dir(out) as stage:
        write_text(stage / "new.txt", "half")
        raise RuntimeError("disk full")
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    assert leftovers(tmp_path) == []
    with replace_dir(out) as stage:
        write_text(stage / "new.txt", "whole")
    assert [p.name for p in out.iterdir()] == ["new.txt"] and leftovers(tmp_path) == []


def test_scenes_interrupted_writes_no_folder(tmp_path, monkeypatch, cof, leftovers):
    from cof_plugins.testbed import synth

    real = synth.make_sample

    def flaky(i, *args, **kwargs):
        if i == 2:
            raise KeyboardInterrupt
        return real(i, *args, **kwargs)

    monkeypatch.setattr(synth, "make_sample", flaky)
    result = cof("data", "scenes", tmp_path / "scenes", "-n", "4", "--sizes", "224")
    assert result.code == 130 and "interrupted" in result.err
    assert not (tmp_path / "scenes").exists() and leftovers(tmp_path) == []
