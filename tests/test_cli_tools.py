"""`cof ls` and `cof doctor`: real recipes, real installed metadata."""

from __future__ import annotations

from cof_plugins.cli import main
from cof_plugins.commands import doctor
from cof_plugins.commands.ls import describe, list_recipes


def test_ls_lists_every_recipe_with_its_header(capsys):
    rows = list_recipes()
    assert rows, "no recipes shipped"
    assert all(not desc.startswith("(no description") for _, desc in rows), rows
    assert main(["ls"]) == 0
    out = capsys.readouterr().out
    for name, _ in rows:
        assert name in out


def test_describe_reads_first_comment(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("#\n# Tiny CPU run.\n# launch: cof sft r.yaml\nkey: 1\n")
    assert describe(path) == "Tiny CPU run."
    path.write_text("key: 1\n")
    assert describe(path).startswith("(no description")


def test_doctor_reports_installed_versions(capsys):
    found = {c.name: c for c in doctor.checks()}
    assert found["transformers"].installed is not None
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert "transformers" in out and "recipes this environment can run" in out
    assert code == (0 if all(c.ok for c in found.values() if c.side == "all") else 1)


def test_doctor_says_what_each_family_cannot_do(capsys):
    from cof_plugins.core.families import FAMILIES

    assert main(["doctor"]) in (0, 1)
    out = capsys.readouterr().out
    for spec in FAMILIES.specs():
        assert spec.name in out and spec.checkpoint in out
        assert all(limit in out for limit in spec.limits)
    assert "flash-linear-attention" in out  # Qwen3.5's CUDA kernels are named
    assert any("qwen3_5" in line and "x32" in line for line in out.splitlines())


def test_doctor_flags_mismatch_and_gives_fix():
    bad = doctor.Check("llamafactory", "0.9.3", "==0.9.5", "sft", "pip install x")
    assert not bad.ok and bad.status == "MISMATCH"
    missing = doctor.Check("verl", None, "==0.9.1", "rl", "pip install y")
    assert missing.status == "missing"
    found = {c.name: c for c in doctor.checks()}
    found["llamafactory"] = bad
    runnable = doctor.runnable(found, gpus=[])
    assert runnable["recipes/sft/tiny_cpu.yaml"] is False
    assert runnable["recipes/rl/* (GPU)"] is False
