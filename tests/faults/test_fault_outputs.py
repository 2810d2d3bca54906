"""Every command that writes: unwritable and missing folders, existing outputs, its own input.

One table of commands, each with the argument naming its output, so a new writer is one row.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

# name -> (argv with OUT for the output, the argument's name as errors give it, output kind)
COMMANDS = {
    "scenes": (["data", "scenes", "OUT", "-n", "1", "--sizes", "224"], "OUT", "dir"),
    "synthesize": (["data", "synthesize", "--from", "ANN", "--out", "OUT"], "--out", "dir"),
    "convert": (
        ["data", "convert", "--from", "TRAJ", "--style", "canonical", "--out", "OUT"],
        "--out",
        "file",
    ),
    "prepare": (["data", "prepare", "vstar", "--from", "SCENES", "--out", "OUT"], "--out", "dir"),
    "to-parquet": (["data", "to-parquet", "--from", "ANN", "--out", "OUT"], "--out", "file"),
    "validate --report": (["data", "validate", "TRAJ", "--report", "OUT"], "--report", "file"),
    "zoom": (["zoom", "IMAGE", "--bbox", "10,10,60,60", "-o", "OUT"], "-o/--output", "file"),
    "tiny-model": (["tiny-model", "OUT"], "DIR", "dir"),
    "export": (["export", "--adapter", "MODEL", "--base", "MODEL", "--out", "OUT"], "--out", "dir"),
    "eval --run-dir": (
        ["eval", "--data", "VSTAR", "--model", "MODEL", "--run-dir", "OUT"],
        "--run-dir",
        "dir",
    ),
    "report": (["report", "MODEL", "-o", "OUT"], "-o/--output", "dir"),
    "viz": (["viz", "MODEL", "-o", "OUT"], "-o/--output", "file"),
}
WRITERS = ["scenes", "synthesize", "convert", "prepare", "to-parquet", "validate --report",
           "zoom", "tiny-model", "export"]  # fmt: skip
CHEAP = ["scenes", "synthesize", "convert", "prepare", "to-parquet", "validate --report", "zoom"]


def argv(name: str, out: Path, scenes: Path, trajectories: Path) -> list[str]:
    places = {
        "OUT": str(out),
        "ANN": str(scenes / "annotations.jsonl"),
        "TRAJ": str(trajectories),
        "SCENES": str(scenes),
        "VSTAR": str(scenes / "test_questions.jsonl"),
        "IMAGE": str(next((scenes / "images").glob("*.png"))),
        "MODEL": str(trajectories.parent),
    }
    return [places.get(a, a) for a in COMMANDS[name][0]]


def target(folder: Path, name: str) -> Path:
    kind = COMMANDS[name][2]
    suffix = {"to-parquet": ".parquet", "zoom": ".png", "viz": ".png"}.get(name, ".json")
    return folder / ("out" if kind == "dir" else f"out{suffix}")


def digest(path: Path) -> str:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("name", COMMANDS)
def test_unwritable_folder_is_an_error_naming_the_argument(
    name, cof, unwritable, scenes, trajectories
):
    out = target(unwritable / "cof-out", name)
    result = cof(*argv(name, out, scenes, trajectories))
    assert result.code != 0
    assert COMMANDS[name][1] in result.err and "cannot write" in result.err
    assert str(unwritable) in result.err


@pytest.mark.parametrize("name", COMMANDS)
def test_folder_that_is_a_file_is_an_error(name, cof, tmp_path, scenes, trajectories):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("not a folder")
    result = cof(*argv(name, target(blocker / "sub", name), scenes, trajectories))
    assert result.code != 0
    assert COMMANDS[name][1] in result.err and "is a file, not a folder" in result.err
    assert blocker.read_text() == "not a folder"


def _existing(out: Path, kind: str) -> None:
    if kind == "dir":
        out.mkdir(parents=True)
        (out / "keep.txt").write_text("earlier output")
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"earlier output")


@pytest.mark.parametrize("name", WRITERS)
def test_existing_output_is_kept_without_overwrite(name, cof, tmp_path, scenes, trajectories):
    out = target(tmp_path / "o", name)
    _existing(out, COMMANDS[name][2])
    before = digest(out)
    result = cof(*argv(name, out, scenes, trajectories))
    assert result.code != 0 and "--overwrite" in result.err and "exists" in result.err
    assert digest(out) == before


@pytest.mark.parametrize("name", CHEAP)
def test_overwrite_replaces_the_output_and_leaves_no_temporaries(
    name, cof, tmp_path, scenes, trajectories, leftovers
):
    out = target(tmp_path / "o", name)
    _existing(out, COMMANDS[name][2])
    result = cof(*argv(name, out, scenes, trajectories), "--overwrite")
    assert result.code == 0, result.text
    if out.is_dir():
        assert not (out / "keep.txt").exists() and any(out.iterdir())
    else:
        assert out.read_bytes() != b"earlier output" and out.stat().st_size > 0
    assert leftovers(tmp_path) == []


def _copy_tree(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_no_command_writes_over_its_own_input(cof, tmp_path, scenes, trajectories, png):
    traj = _copy_tree(trajectories.parent, tmp_path / "sft") / "train.json"
    snap = _copy_tree(scenes, tmp_path / "snap")
    image = png("pic.png")
    cases = [
        (["data", "convert", "--from", traj, "--style", "canonical", "--out", traj], traj),
        (["data", "to-parquet", "--from", traj, "--out", traj, "--overwrite"], traj),
        (["data", "validate", traj, "--report", traj, "--overwrite"], traj),
        (["zoom", image, "--bbox", "10,10,60,60", "-o", image, "--overwrite"], image),
        (["data", "synthesize", "--from", snap / "annotations.jsonl", "--out", snap,
          "--overwrite"], snap),
        (["data", "prepare", "vstar", "--from", snap, "--out", snap, "--overwrite"], snap),
        (["data", "prepare", "vstar", "--from", snap, "--image-dir", tmp_path / "imgs",
          "--out", tmp_path / "imgs"], snap),
        (["export", "--adapter", traj.parent, "--base", traj.parent, "--out", traj.parent,
          "--overwrite"], traj.parent),
    ]  # fmt: skip
    for args, source in cases:
        before = digest(source)
        result = cof(*args)
        assert result.code != 0, args
        assert "input" in result.err, (args, result.err)
        assert digest(source) == before, args


def test_prepare_into_the_snapshot_never_links_a_folder_to_itself(cof, tmp_path, scenes):
    snap = _copy_tree(scenes, tmp_path / "snap")
    result = cof("data", "prepare", "vstar", "--from", snap, "--out", snap / "images")
    assert result.code != 0 and "inside the input folder" in result.err
    assert not (snap / "images" / "images").exists()
    assert all(not p.is_symlink() for p in snap.rglob("*"))
