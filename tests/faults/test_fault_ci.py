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


def _pytest(tmp_path, target: str, required: bool) -> subprocess.CompletedProcess:
    (tmp_path / "test_module_needs.py").write_text(NEEDS_MISSING)
    (tmp_path / "test_call_needs.py").write_text(CALLS_IT)
    # The inner run is its own session: none of the outer run's pytest options (a --basetemp
    # given through PYTEST_ADDOPTS would be this very run's folder).
    env = {k: v for k, v in os.environ.items() if k not in (extras.ENV, "PYTEST_ADDOPTS")}
    if required:
        env[extras.ENV] = "1"
    plugin = "cof_plugins.testbed.extras"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", plugin,
           "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path / target)]  # fmt: skip
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_missing_extra_skips_locally_and_fails_under_cof_require_all(tmp_path):
    """Both ways a test file can need a module: at import, and inside a test. A module that
    cannot be collected stops the session (pytest's "error during collection")."""
    local = _pytest(tmp_path, "", required=False)
    assert local.returncode == 0 and "2 skipped" in local.stdout, local.stdout
    for target, outcome in (
        ("test_module_needs.py", "1 error"),
        ("test_call_needs.py", "1 failed"),
    ):
        ci = _pytest(tmp_path, target, required=True)
        assert ci.returncode != 0 and outcome in ci.stdout, ci.stdout
        assert "COF_REQUIRE_ALL=1 and a test needs a missing module" in ci.stdout
        assert "cof_no_such_module" in ci.stdout


def test_the_session_names_every_missing_module_of_the_cpu_environment(monkeypatch):
    monkeypatch.setitem(extras.CPU_ALL, "cof_no_such_module", "rl")
    assert extras.missing_modules() == ["cof_no_such_module (the [rl] extra)"]
