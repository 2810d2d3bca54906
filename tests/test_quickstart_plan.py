"""`cof quickstart` plumbing without training: the method registry, the CoF plan's commands,
the summary it writes and the RL metrics it reads (the slow end-to-end run is
tests/test_quickstart.py)."""

from __future__ import annotations

import json
import shlex

import pytest

from cof_plugins.cli import main
from cof_plugins.commands import quickstart
from cof_plugins.commands.quickstart_cof import CofSettings, bar_met, build_plan, rl_metrics
from cof_plugins.core.registry import RegistryError


def _method(out, options):
    (out / "touched").write_text(json.dumps(options))
    stage = quickstart.Stage("only", ["ls"], str(out / "touched"), code=0, seconds=1.25)
    return {
        "method": "probe", "ok": True, "stages": quickstart.stage_rows([stage]),
        "rates": {"m": {"zoom_illegible": 75.0}}, "thresholds": {"zoom_illegible": 50.0},
    }  # fmt: skip


@pytest.fixture
def probe():
    """A registered test method, removed afterwards so other tests see the shipped table."""
    quickstart.register()
    quickstart.METHODS.register("probe", _method)
    yield
    quickstart.METHODS._items.pop("probe", None)


def test_cof_is_registered_and_registration_is_idempotent():
    quickstart.register()
    quickstart.register()
    assert "cof" in quickstart.METHODS.names()
    with pytest.raises(RegistryError, match="already registered"):
        quickstart.METHODS.register("cof", _method)


def test_sifthinker_is_registered_and_refuses_options_it_does_not_take(tmp_path, capsys):
    quickstart.register()
    assert {"cof", "sifthinker"} <= set(quickstart.METHODS.names())
    run_sif = quickstart.METHODS.get("sifthinker")
    with pytest.raises(ValueError, match="takes no color"):
        run_sif(tmp_path, {"color": 1})
    assert not any(tmp_path.iterdir())  # refused before any stage ran


def test_an_unknown_method_lists_the_valid_ones(tmp_path, capsys):
    assert main(["quickstart", "--method", "chain-of-spott", "--out", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert "unknown quickstart method 'chain-of-spott'" in out and "valid: cof" in out


def test_a_method_gets_given_options_and_its_summary_is_written(tmp_path, capsys, probe):
    code = main(["quickstart", "--method", "probe", "--out", str(tmp_path), "--steps", "7"])
    assert code == 0
    assert json.loads((tmp_path / "touched").read_text()) == {"steps": 7}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["method"] == "probe" and summary["stages"][0]["seconds"] == 1.2
    out = capsys.readouterr().out
    assert "zoom_illegible" in out and "75.00" in out and "needs >= 50.0" in out


def test_cof_refuses_options_it_does_not_take(tmp_path, capsys):
    quickstart.register()
    with pytest.raises(ValueError, match="no option colour"):
        CofSettings.from_options({"colour": 1})
    with pytest.raises(ValueError, match="rl is off"):
        CofSettings.from_options({"rl": False})


def _argv(plan, name):
    return next(s for s in plan.stages if s.name == name).argv


def test_plan_judges_legibility_as_the_training_data_does(tmp_path):
    """The eval questions' legibility comes from the same synthesize command line (family,
    pixels, threshold) as the training trajectories, and the report reads it."""
    plan = build_plan(tmp_path, CofSettings(legible_side=11.5, large_targets=0.25))
    train, policy = _argv(plan, "trajectories"), _argv(plan, "eval legibility")
    fixed = [a for a in train if "data" not in a]
    assert fixed == [a for a in policy if "data" not in a]
    assert train[train.index("--legible-side") + 1] == "11.5"
    for name in ("synthetic data", "eval data"):
        argv = _argv(plan, name)
        assert argv[argv.index("--large-targets") + 1] == "0.25"
    report = _argv(plan, "report")
    assert report[report.index("--legibility") + 1] == str(
        tmp_path / "data/vstar_policy/train.json"
    )
    pixels = ["--min-pixels", "3136", "--max-pixels", "50176"]
    for name in ("trajectories", "eval legibility", "eval base", "eval sft", "eval rl"):
        argv = _argv(plan, name)
        assert shlex.join(pixels) in shlex.join(argv), name


def test_plan_without_rl_and_rl_logs_to_a_file(tmp_path):
    full = build_plan(tmp_path, CofSettings())
    rl = next(s for s in full.stages if s.name == "rl")
    assert rl.env == {"VERL_FILE_LOGGER_PATH": str(tmp_path / "rl_metrics.jsonl")}
    assert "trainer.logger=[console,file]" in rl.argv
    assert rl.command.startswith("VERL_FILE_LOGGER_PATH=")
    short = build_plan(tmp_path, CofSettings(rl=False, models=("sft",)))
    assert not any(s.name.startswith("rl") or s.name == "eval rl" for s in short.stages)


def test_rl_metrics_keep_training_steps_only(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [
        {"step": 1, "data": {"cof/tool_use/rate": 0.25, "cof/tool_calls/mean": 0.5, "x": 1}},
        {"step": 2, "data": {"val-core/acc": 0.1}},
        {"step": 2, "data": {"cof/tool_use/rate": 0.5}},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert rl_metrics(path) == [
        {"step": 1, "cof/tool_use/rate": 0.25, "cof/tool_calls/mean": 0.5},
        {"step": 2, "cof/tool_use/rate": 0.5},
    ]
    assert rl_metrics(tmp_path / "absent.jsonl") == []


def test_a_failed_stage_stops_with_the_command_to_rerun(tmp_path, capsys):
    stages = [
        quickstart.Stage(
            "bad", ["data", "scenes", str(tmp_path / "o"), "--large-targets", "2"], ""
        ),
        quickstart.Stage("never", ["ls"], ""),
    ]
    assert quickstart.run_stages(stages) is False
    assert stages[0].code not in (0, None) and stages[1].code is None
    out = capsys.readouterr().out
    assert "stage 'bad' exited" in out and "--large-targets 2" in out


def test_bar_met_needs_every_fine_tuned_model_over_every_floor():
    floors = {"zoom_illegible": 50.0, "direct_legible": 50.0}
    good = {"zoom_illegible": 50.0, "direct_legible": 80.0}
    base = {"zoom_illegible": 0.0, "direct_legible": 0.0}  # the base model is not held to it
    assert bar_met({"base": base, "sft": good, "rl": good}, floors)
    assert not bar_met({"base": base, "sft": good, "rl": {**good, "zoom_illegible": 49.9}}, floors)
    assert not bar_met({"sft": {**good, "direct_legible": None}}, floors)
    assert not bar_met({"base": good}, floors) and not bar_met({}, floors)


def test_a_stage_that_raises_still_ends_in_a_summary(tmp_path, capsys, monkeypatch):
    """A stage raising (not exiting, e.g. a Ray task's error) stops the run like a failure."""
    import cof_plugins.cli

    def crash(argv):
        raise RuntimeError("a worker died")

    monkeypatch.setattr(cof_plugins.cli, "main", crash)
    stages = [quickstart.Stage("bad", ["rl", "x"], ""), quickstart.Stage("never", ["ls"], "")]
    assert quickstart.run_stages(stages) is False
    assert [s.code for s in stages] == [1, None]
    captured = capsys.readouterr()
    assert "quickstart stopped: stage 'bad'" in captured.out
    assert "a worker died" in captured.err


def test_run_stages_calls_before_each_stage_and_names_the_run_when_it_stops(tmp_path, capsys):
    """``before`` sees each stage before it runs (SIFThinker writes the summary its report
    stage reads); ``label`` names the run in the stop message."""
    bad = ["data", "scenes", str(tmp_path / "o"), "--large-targets", "2"]
    stages = [quickstart.Stage("list", ["ls"]), quickstart.Stage("bad", bad),
              quickstart.Stage("never", ["ls"])]  # fmt: skip
    seen = []
    ok = quickstart.run_stages(
        stages, label="probe quickstart", before=lambda s: seen.append((s.name, s.code))
    )
    assert ok is False and seen == [("list", None), ("bad", None)]
    assert stages[0].code == 0 and stages[2].code is None
    assert "probe quickstart stopped: stage 'bad' exited" in capsys.readouterr().out
