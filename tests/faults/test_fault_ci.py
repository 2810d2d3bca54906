"""In CI (COF_REQUIRE_ALL=1) a missing optional dependency fails the run, never skips quietly."""

from __future__ import annotations

import os
import subprocess
import sys

from cof_plugins.testbed import extras

NEEDS_MISSING = """
import pytest

pytest.importorskip("cof_no_such_module")


def test_uses_it():
    pass
"""
CALLS_IT = """
import pytest


def test_needs_it_inside():
    pytest.importorskip("cof_no_such_module")
"""


def _pytest(tmp_path, source: str, required: bool) -> subprocess.CompletedProcess:
    test = tmp_path / "test_probe.py"
    test.write_text(source)
    env = {k: v for k, v in os.environ.items() if k != extras.ENV}
    if required:
        env[extras.ENV] = "1"
    plugin = "cof_plugins.testbed.extras"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", plugin,
           "--rootdir", str(tmp_path), "-c", os.devnull, str(test)]  # fmt: skip
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_missing_extra_skips_locally_and_fails_under_cof_require_all(tmp_path):
    for source in (NEEDS_MISSING, CALLS_IT):
        local = _pytest(tmp_path, source, required=False)
        # 5: pytest's "no tests ran" (a module skipped whole), 0: a test skipped
        assert local.returncode in (0, 5) and "1 skipped" in local.stdout, local.stdout
        ci = _pytest(tmp_path, source, required=True)
        assert ci.returncode != 0, ci.stdout
        assert "COF_REQUIRE_ALL=1" in ci.stdout and "cof_no_such_module" in ci.stdout


def test_the_session_names_every_missing_module_of_the_cpu_environment(monkeypatch):
    monkeypatch.setitem(extras.CPU_ALL, "cof_no_such_module", "rl")
    assert extras.missing_modules() == ["cof_no_such_module (the [rl] extra)"]
