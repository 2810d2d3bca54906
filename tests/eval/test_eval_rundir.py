"""Run directories under misuse: two `cof eval` at once, changed settings on resume, reports
from another directory, damaged run dirs; the CLI runs in a subprocess where a user would."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eval_support import FakeBackend, answer, write_jsonl

from cof_plugins.cli import main as cof
from cof_plugins.eval.lock import LOCK_FILE, RunLock
from cof_plugins.eval.loop import LoopConfig
from cof_plugins.eval.runner import EvalSpec, run_eval
from cof_plugins.eval.store import RunDirError
from cof_plugins.testbed.openai_server import FakeOpenAIServer

NOWHERE = "/nonexistent/model-that-would-fail-to-load"


def cli(*argv: str, cwd: Path | None = None, wait: bool = True):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    cmd = [sys.executable, "-m", "cof_plugins.cli", *argv]
    if not wait:
        return subprocess.Popen(cmd, env=env, cwd=cwd, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture
def data(tmp_path, synth_samples):
    return write_jsonl(tmp_path / "set.jsonl", synth_samples[:3])


def _spec(data, synth_dir, **kw):
    kw.setdefault("loop", LoopConfig(batch_size=2))
    return EvalSpec(benchmark=str(data), model="m", image_root=str(synth_dir), judge=False, **kw)


def _run(spec, run_dir):
    return run_eval(spec, run_dir, backend=FakeBackend(lambda r, t: answer("A")), progress=False)


def _wait_for(predicate, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_second_eval_is_refused_and_a_dead_holder_is_taken_over(tmp_path, data, synth_dir, caplog):
    run_dir = tmp_path / "run"

    def slow(body):
        time.sleep(0.5)
        return answer("A")

    with FakeOpenAIServer(slow) as server:
        first = cli("eval", "--data", str(data), "--image-root", str(synth_dir), "--model", "m",
                    "--backend", "openai", "--url", server.url, "--run-dir", str(run_dir),
                    "--batch-size", "1", "--no-judge", "--no-progress", wait=False)  # fmt: skip
        lock = run_dir / LOCK_FILE
        try:
            _wait_for(lambda: lock.is_file() and str(first.pid) in lock.read_text())
            # A second run on the same dir refuses before loading its (unloadable) model.
            second = cli("eval", "--data", str(data), "--image-root", str(synth_dir),
                         "--model", NOWHERE, "--run-dir", str(run_dir), "--no-judge",
                         "--no-progress")  # fmt: skip
            assert second.returncode == 2, second.stderr
            assert f"in use by another `cof eval` (pid {first.pid} on host " in second.stderr
            assert socket.gethostname() in second.stderr and "started 20" in second.stderr
            assert "Traceback" not in second.stderr
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
    assert str(first.pid) in lock.read_text()  # the dead holder's record is still there
    spec = _spec(data, synth_dir, backend="openai")
    with (
        caplog.at_level(logging.WARNING, logger="cof_plugins.eval.lock"),
        FakeOpenAIServer(lambda body: answer("A")) as server,
    ):
        spec = EvalSpec(**{**spec.__dict__, "backend_options": {"url": server.url}})
        summary = run_eval(spec, run_dir, progress=False)
    assert "took over the lock" in caplog.text and f"pid {first.pid}" in caplog.text
    assert summary["overall"]["n"] == 3
    assert lock.read_text() == ""  # released cleanly: no holder recorded


def test_lock_is_exclusive_within_one_process_too(tmp_path):
    with RunLock(tmp_path), pytest.raises(RunDirError, match=rf"pid {os.getpid()} on host"):
        RunLock(tmp_path).acquire()
    with RunLock(tmp_path) as again:  # released: free again, and nobody to take over from
        assert again.previous is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"samples": 2, "loop": LoopConfig(batch_size=2, temperature=0.7)}, "samples: 1 -> 2"),
        ({"loop": LoopConfig(batch_size=2, temperature=0.3)}, "loop.temperature: 0.0 -> 0.3"),
        ({"shuffle_options": 2}, "shuffle_options: 0 -> 2"),
        ({"backend": "openai"}, "backend: 'transformers' -> 'openai'"),
        ({"backend_options": {"dtype": "float32"}}, "backend_options.dtype: 'auto' -> 'float32'"),
        ({"loop": LoopConfig(batch_size=2, exact_frames=True)}, "frames: 'reduced/2' -> 'exact'"),
        ({"seed": 3}, "seed: 0 -> 3"),
        ({"skip_bad_rows": True}, "skip_bad_rows: False -> True"),
    ],
)
def test_every_result_changing_setting_is_checked_on_resume(
    tmp_path, data, synth_dir, change, message
):
    _run(_spec(data, synth_dir), tmp_path / "run")
    with pytest.raises(RunDirError, match=message.replace("(", r"\(").replace(".", r"\.")):
        _run(_spec(data, synth_dir, **change), tmp_path / "run")
    # Throughput knobs may change.
    _run(_spec(data, synth_dir, backend_options={"device": "cpu"}), tmp_path / "run")


def test_a_run_from_before_new_settings_resumes(tmp_path, data, synth_dir):
    run_dir = tmp_path / "run"
    spec = _spec(data, synth_dir, loop=LoopConfig(batch_size=2, exact_frames=True))
    _run(spec, run_dir)
    info = json.loads((run_dir / "run.json").read_text())
    for key in ("samples", "shuffle_options", "skip_bad_rows", "frames", "backend_options"):
        del info["settings"][key]
    del info["settings"]["loop"]["temperature"]
    (run_dir / "run.json").write_text(json.dumps(info))
    assert _run(spec, run_dir)["overall"]["n"] == 3  # old runs used exact frames
    with pytest.raises(RunDirError, match="frames: 'exact' -> 'reduced/2'"):
        _run(_spec(data, synth_dir), run_dir)


def test_dtype_resolved_differently_is_refused(tmp_path, data, synth_dir):
    class Bf16(FakeBackend):
        def describe(self):
            return {"backend": "fake", "dtype": "torch.bfloat16"}

    run_dir = tmp_path / "run"
    spec = _spec(data, synth_dir)
    run_eval(spec, run_dir, backend=Bf16(lambda r, t: answer("A")), progress=False)
    info = json.loads((run_dir / "run.json").read_text())
    info["model"]["dtype"] = "torch.float32"
    (run_dir / "run.json").write_text(json.dumps(info))
    (run_dir / "results.jsonl").write_text("")  # work left to do: the model loads
    with pytest.raises(RunDirError, match=r"float32 weights, this session loaded torch\.bfloat16"):
        run_eval(spec, run_dir, backend=Bf16(lambda r, t: answer("A")), progress=False)


def test_report_and_viz_work_from_any_directory(tmp_path, synth_samples, synth_dir):
    work = tmp_path / "work"
    (work / "imgs").mkdir(parents=True)
    for s in synth_samples[:2]:
        (work / "imgs" / Path(s.image).name).write_bytes((synth_dir / s.image).read_bytes())
    rows = [{"id": s.id, "image": Path(s.image).name, "question": s.question,
             "options": s.options, "answer": s.answer} for s in synth_samples[:2]]  # fmt: skip
    (work / "set.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with FakeOpenAIServer(lambda body: answer("A")) as server:
        made = cli("eval", "--data", "set.jsonl", "--image-root", "imgs", "--model", "m",
                   "--backend", "openai", "--url", server.url, "--run-dir", "runs/a",
                   "--no-judge", "--no-progress", cwd=work)  # fmt: skip
    assert made.returncode == 0, made.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_dir = str(work / "runs" / "a")
    report = cli("report", run_dir, "-o", "rep", "--trajectories", "2", cwd=elsewhere)
    assert report.returncode == 0, report.stderr
    text = (elsewhere / "rep" / "report.md").read_text()
    assert "image unavailable" not in text and text.count("](trajectories/") == 2
    viz = cli("viz", run_dir, "-o", "one.png", cwd=elsewhere)
    assert viz.returncode == 0, viz.stderr
    record = json.loads((work / "runs" / "a" / "results.jsonl").read_text().splitlines()[0])
    assert Path(record["image"]["path"]).is_absolute()


def test_an_old_run_with_relative_paths_reports_from_anywhere(
    tmp_path, data, synth_dir, monkeypatch
):
    from cof_plugins.eval.runner import load_run

    run_dir = tmp_path / "run"
    _run(_spec(data, synth_dir), run_dir)
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    for r in records:
        r["image"]["path"] = os.path.relpath(r["image"]["path"], tmp_path)
    (run_dir / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    info = json.loads((run_dir / "run.json").read_text())
    info["runtime"]["cwd"] = str(tmp_path)
    (run_dir / "run.json").write_text(json.dumps(info))
    monkeypatch.chdir(synth_dir)
    _, loaded = load_run(run_dir)
    assert all(Path(r["image"]["path"]).is_file() for r in loaded)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "run.json").write_text("{not json"), r"run\.json is not valid JSON"),
        (lambda d: (d / "run.json").write_text("[1, 2]"), "does not hold a run's settings"),
        (lambda d: (d / "run.json").mkdir(), r"run\.json is not a file"),
        (lambda d: (d / "results.jsonl").write_text("x\n{}\n"), "line 1 is not a result record"),
    ],
)
def test_a_damaged_run_dir_is_reported_before_the_model_loads(tmp_path, data, capsys, damage,
                                                              message):  # fmt: skip
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    damage(run_dir)
    code = cof(["eval", "--data", str(data), "--model", NOWHERE, "--run-dir", str(run_dir),
                "--no-judge", "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and re.search(message, err), err
    assert NOWHERE not in err


def test_a_run_dir_that_is_a_file(tmp_path, data):
    target = tmp_path / "taken.txt"
    target.write_text("notes")
    made = cli("eval", "--data", str(data), "--model", NOWHERE, "--run-dir", str(target),
               "--no-judge", "--no-progress")  # fmt: skip
    assert made.returncode == 2 and "is a file, not a folder" in made.stderr
    assert "Traceback" not in made.stderr and target.read_text() == "notes"


def test_summary_is_replaced_atomically(tmp_path, data, synth_dir, monkeypatch):
    run_dir = tmp_path / "run"
    _run(_spec(data, synth_dir), run_dir)
    before = (run_dir / "summary.json").read_text()
    results = run_dir / "results.jsonl"
    results.write_text("".join(results.read_text().splitlines(keepends=True)[:-1]))
    real_replace = os.replace

    def full_disk_for_the_summary(src, dst):
        if str(dst).endswith("summary.json"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full_disk_for_the_summary)
    with pytest.raises(OSError, match="No space left"):
        run_eval(_spec(data, synth_dir), run_dir, backend=FakeBackend(lambda r, t: answer("B")),
                 progress=False)  # fmt: skip
    assert (run_dir / "summary.json").read_text() == before  # the old one, whole
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def test_reports_never_repair_a_file_a_run_may_be_writing(tmp_path, data, synth_dir):
    from cof_plugins.eval.runner import load_run

    run_dir = tmp_path / "run"
    _run(_spec(data, synth_dir), run_dir)
    path = run_dir / "results.jsonl"
    torn = path.read_text() + '{"key": "half-writ'
    path.write_text(torn)
    _, records = load_run(run_dir)
    assert len(records) == 3 and path.read_text() == torn


def test_a_run_made_with_older_reduced_frames_is_not_resumed_with_new_ones(
    tmp_path, data, synth_dir
):
    """The reduced path's pixels changed (revision 2); an older run's frames would mix."""
    spec, run_dir = _spec(data, synth_dir), tmp_path / "run"
    _run(spec, run_dir)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["settings"]["frames"] == "reduced/2"
    info["settings"]["frames"] = "reduced"  # what a run before revision 2 recorded
    (run_dir / "run.json").write_text(json.dumps(info))
    with pytest.raises(RunDirError, match="frames: 'reduced' -> 'reduced/2'"):
        _run(spec, run_dir)


def test_retrained_weights_in_the_same_folder_are_not_resumed(tmp_path, data, synth_dir):
    model = tmp_path / "model"
    model.mkdir()
    weights = model / "model.safetensors"
    weights.write_bytes(bytes(range(256)) * 40_000)  # 10 MB: the fingerprint samples it
    spec = EvalSpec(
        benchmark=str(data), model=str(model), image_root=str(synth_dir), judge=False,
        loop=LoopConfig(batch_size=2),
    )  # fmt: skip
    _run(spec, tmp_path / "run")
    # The same bytes written again (a copy, a new timestamp) are the same model: it resumes.
    weights.write_bytes(weights.read_bytes())
    assert _run(spec, tmp_path / "run")["overall"]["n"] == 3
    retrained = bytearray(weights.read_bytes())
    retrained[len(retrained) // 2] ^= 0xFF  # one byte in the middle sample, size unchanged
    weights.write_bytes(bytes(retrained))
    with pytest.raises(RunDirError, match=r"model_weights: '[0-9a-f]{64}' -> '[0-9a-f]{64}'"):
        _run(spec, tmp_path / "run")
