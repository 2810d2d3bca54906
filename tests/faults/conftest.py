"""Fixtures for the fault suite: the real ``cof`` CLI in this process, small data, bad places.

Every case runs the command a user types (``cof_plugins.cli.main``) and checks what the user
sees (exit status, one clear line naming the file, row or argument) and what is left on
disk. Interrupted writes run in a subprocess that is signalled mid-write.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@pytest.fixture
def cof(capsys):
    """``cof(*argv)`` -> Result(exit status, stdout, stderr); a traceback fails the test."""
    from cof_plugins.cli import main

    def run(*argv: object) -> Result:
        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse and commands that exit with a message
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
        captured = capsys.readouterr()
        assert "Traceback" not in captured.out + captured.err
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def scenes(tmp_path_factory) -> Path:
    """Four synthetic grounded samples (224 and 448 px): OUT/annotations.jsonl and images."""
    from cof_plugins.testbed.synth import write_dataset

    out = tmp_path_factory.mktemp("fault-scenes") / "scenes"
    write_dataset(out, 4, (224, 448), seed=5, progress=False, vstar=True)
    return out


@pytest.fixture(scope="session")
def trajectories(scenes, tmp_path_factory) -> Path:
    """The four samples synthesized: a canonical train.json with frames and crops."""
    from cof_plugins.data.synthesize import synthesize

    out = tmp_path_factory.mktemp("fault-synth") / "sft"
    return synthesize(scenes / "annotations.jsonl", out, progress=False).path


@pytest.fixture
def annotations(scenes, tmp_path):
    """``annotations(rows)`` writes annotation rows (images from ``scenes``) to a JSONL file."""

    def write(rows: list[dict], name: str = "ann.jsonl") -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return path

    return write


@pytest.fixture
def scene_annotations(scenes) -> list[dict]:
    """The scenes' annotation rows with absolute image paths (safe to write anywhere)."""
    rows = [json.loads(x) for x in (scenes / "annotations.jsonl").read_text().splitlines()]
    for row in rows:
        row["image"] = str(scenes / row["image"])
    return rows


def _unwritable(tmp_path: Path) -> Path | None:
    if os.geteuid() != 0:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o500)
        return folder
    for candidate in (Path("/sys/kernel"), Path("/sys"), Path("/proc/sys")):
        try:
            fd, name = tempfile.mkstemp(dir=candidate)
        except OSError:
            return candidate  # even root cannot create files here
        os.close(fd)
        os.unlink(name)
    return None


@pytest.fixture
def unwritable(tmp_path) -> Path:
    """A folder no file can be created in (root: a kernel file system such as /sys)."""
    folder = _unwritable(tmp_path)
    if folder is None:
        pytest.skip("no folder on this machine refuses writes to this user")
    yield folder
    if folder.is_relative_to(tmp_path):
        folder.chmod(0o700)


@pytest.fixture
def png(tmp_path):
    """``png(name, size, colour)`` writes a flat RGB PNG under tmp_path."""

    def make(name: str, size=(224, 224), colour=(120, 140, 160)) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, colour).save(path)
        return path

    return make


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".partial-" in p.name or ".old-" in p.name)


@pytest.fixture
def leftovers():
    """``leftovers(folder)``: temporary files or folders a writer left (``core.atomic``)."""
    return _leftovers
