"""Resumable runs: interrupted or killed runs finish with the same metrics, nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import pytest
from eval_support import FakeBackend, answer, write_jsonl, zoom_call

from cof_plugins.eval.loop import LoopConfig
from cof_plugins.eval.runner import EvalSpec, run_eval
from cof_plugins.eval.store import ResultStore, RunDirError

HERE = Path(__file__).parent


def deterministic_reply(request, turn):
    """Zoom first on some questions, then answer a letter fixed by the question text."""
    question = request.messages[1]["content"]
    h = zlib.crc32(question.encode())
    if turn == 0 and h % 2:
        return zoom_call([2, 2, 40, 40])
    return answer("ABCD"[h % 4] if "(C)" in question else "AB"[h % 2])


def _spec(data, image_root, **loop):
    return EvalSpec(
        benchmark=str(data), model="fake", image_root=str(image_root),
        loop=LoopConfig(batch_size=3, **loop), judge=False, sweep=(224, 448),
    )  # fmt: skip


def _comparable(summary):
    """Everything but timing."""

    def strip(stats):
        return {k: v for k, v in stats.items() if k != "latency_s"}

    return (strip(summary["overall"]), {c: strip(s) for c, s in summary["by_category"].items()})


def _keys(run_dir):
    return [json.loads(line)["key"] for line in (run_dir / "results.jsonl").open()]


@pytest.fixture
def data(tmp_path, synth_samples):
    return write_jsonl(tmp_path / "set.jsonl", synth_samples)


@pytest.fixture
def reference(tmp_path, data, synth_dir):
    summary = run_eval(_spec(data, synth_dir), tmp_path / "ref",
                       backend=FakeBackend(deterministic_reply), progress=False)  # fmt: skip
    assert summary["overall"]["n"] == 24
    return summary


class Interrupt(Exception):
    pass


def test_exception_midway_then_resume(tmp_path, data, synth_dir, reference):
    run_dir, stored = tmp_path / "run", []

    def stop_after_five(records):
        stored.extend(records)
        if len(stored) >= 5:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_eval(_spec(data, synth_dir), run_dir, backend=FakeBackend(deterministic_reply),
                 progress=False, on_batch=stop_after_five)  # fmt: skip
    partial = _keys(run_dir)
    assert 5 <= len(partial) < 24
    backend = FakeBackend(deterministic_reply)
    summary = run_eval(_spec(data, synth_dir), run_dir, backend=backend, progress=False)
    keys = _keys(run_dir)
    assert len(keys) == len(set(keys)) == 24 and keys[: len(partial)] == partial
    first_turn = [r for call in backend.calls for r in call if len(r.messages) == 2]
    assert len(first_turn) == 24 - len(partial)  # stored samples did not run again
    assert _comparable(summary) == _comparable(reference)
    info = json.loads((run_dir / "run.json").read_text())
    assert [s["done_before"] for s in info["sessions"]] == [0, len(partial)]
    assert info["settings"]["sweep"] == [224, 448] and info["versions"]["python"]


def test_half_written_last_line_is_rewritten(tmp_path, data, synth_dir, reference):
    run_dir = tmp_path / "run"
    spec = _spec(data, synth_dir, max_turns=6)
    run_eval(spec, run_dir, backend=FakeBackend(deterministic_reply), progress=False)
    path = run_dir / "results.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:10]) + lines[10][: len(lines[10]) // 2])
    store = ResultStore(run_dir)
    assert len(store.done) == 10 and store.repaired
    assert path.read_text() == "".join(lines[:10])
    summary = run_eval(spec, run_dir, backend=FakeBackend(deterministic_reply), progress=False)
    keys = _keys(run_dir)
    assert len(keys) == len(set(keys)) == 24
    assert _comparable(summary) == _comparable(reference)


def test_damaged_middle_line_is_refused(tmp_path, data, synth_dir, reference):
    run_dir = tmp_path / "run"
    run_eval(_spec(data, synth_dir), run_dir, backend=FakeBackend(deterministic_reply),
             progress=False)  # fmt: skip
    path = run_dir / "results.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3]) + "garbage\n" + "".join(lines[3:]))
    with pytest.raises(RunDirError, match="line 4"):
        ResultStore(run_dir)


def test_other_settings_are_refused(tmp_path, data, synth_dir, reference):
    with pytest.raises(RunDirError, match=r"loop\.max_new_tokens: 512 -> 64"):
        run_eval(_spec(data, synth_dir, max_new_tokens=64), tmp_path / "ref",
                 backend=FakeBackend(deterministic_reply), progress=False)  # fmt: skip
    again = run_eval(_spec(data, synth_dir), tmp_path / "ref",
                     backend=FakeBackend(deterministic_reply), progress=False)  # fmt: skip
    assert _comparable(again) == _comparable(reference)


SCRIPT = """
import sys, time
sys.path.insert(0, {here!r})
from eval_support import FakeBackend
from test_eval_resume import _spec, deterministic_reply
from cof_plugins.eval.runner import run_eval

def slow(request, turn):
    time.sleep(0.15)
    return deterministic_reply(request, turn)

run_eval(_spec({data!r}, {root!r}), {run_dir!r}, backend=FakeBackend(slow), progress=False)
"""


def test_an_edited_protocol_file_is_refused_on_resume(tmp_path, data, synth_dir):
    """The run records the protocol's text digest, not just its path (core.protocol)."""
    proto = tmp_path / "team.yaml"
    proto.write_text("inherit: unified\nuser_suffix: Look, then answer.\n")
    spec = _spec(data, synth_dir, protocol=str(proto))
    run_dir = tmp_path / "run"
    backend = FakeBackend(deterministic_reply)
    run_eval(spec, run_dir, backend=backend, progress=False)
    assert backend.calls[0][0].messages[1]["content"].endswith("Look, then answer.")
    proto.write_text("inherit: unified\nuser_suffix: Look twice, then answer.\n")
    with pytest.raises(RunDirError, match=r"protocol_sha256: '[0-9a-f]{64}' -> '[0-9a-f]{64}'"):
        run_eval(spec, run_dir, backend=FakeBackend(deterministic_reply), progress=False)


def test_killed_process_loses_nothing(tmp_path, data, synth_dir, reference):
    run_dir = tmp_path / "killed"
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(SCRIPT).format(
        here=str(HERE), data=str(data), root=str(synth_dir), run_dir=str(run_dir)))  # fmt: skip
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, str(script)], env=env)
    results = run_dir / "results.jsonl"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if results.exists() and results.read_text().count("\n") >= 4:
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    partial = len(ResultStore(run_dir).done)
    assert 4 <= partial < 24
    summary = run_eval(_spec(data, synth_dir), run_dir, backend=FakeBackend(deterministic_reply),
                       progress=False)  # fmt: skip
    keys = _keys(run_dir)
    assert len(keys) == len(set(keys)) == 24
    assert _comparable(summary) == _comparable(reference)
