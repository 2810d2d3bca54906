"""Optional dependencies in the tests: skipped on a laptop, a failure in CI.

Test files that need an extra start with ``pytest.importorskip("verl")``: without it their
tests are skipped. Under ``COF_REQUIRE_ALL=1`` (``.ci/run`` sets it) the hooks below, which
``tests/conftest.py`` imports, turn every such skip into a failure, so an extra that failed
to install cannot leave CI green with tens of tests quietly skipped; and the session first
checks that every module of the CPU environment (``pip install -e .[cpu-all]``) imports,
naming each one that does not.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

ENV = "COF_REQUIRE_ALL"
# module -> the extra that installs it; what `launch/setup_env.sh cpu` gives CI.
CPU_ALL = {
    "llamafactory": "sft",
    "verl": "rl",
    "ray": "rl",
    "transfer_queue": "rl",
    "pyarrow": "rl",
    "pandas": "rl",
    "matplotlib": "eval",
    "math_verify": "math",
    "hypothesis": "test",
    "pytest_timeout": "test",
    "qwen_vl_utils": "cpu-all",
}
_SKIP_PREFIX = "could not import"  # pytest.importorskip's reason


def required() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


def missing_modules() -> list[str]:
    """``module ([extra])`` for every module of the CPU environment that is not installed.

    Found, not imported (importing the trainers takes a minute): a module that is installed
    but fails to import makes its tests' ``importorskip`` skip, which the hooks fail.
    """
    return [
        f"{module} (the [{extra}] extra)"
        for module, extra in CPU_ALL.items()
        if importlib.util.find_spec(module) is None
    ]


def pytest_sessionstart(session: Any) -> None:
    """Under COF_REQUIRE_ALL=1, stop at once, naming every extra that is not importable."""
    if not required():
        return
    import pytest

    missing = missing_modules()
    if missing:
        listed = "\n  ".join(missing)
        pytest.exit(f"{ENV}=1 but optional dependencies are missing:\n  {listed}", returncode=1)


def _importorskip_skip(report: Any) -> bool:
    text = str(getattr(report, "longrepr", "") or "")
    return bool(report.skipped) and _SKIP_PREFIX in text


def _fail(report: Any) -> Any:
    if required() and _importorskip_skip(report):
        report.outcome = "failed"
        report.longrepr = f"{ENV}=1 and a test needs a missing module: {report.longrepr}"
    return report


def _wrapper(function: Any) -> Any:
    import pytest

    return pytest.hookimpl(wrapper=True)(function)


@_wrapper
def pytest_make_collect_report(collector: Any) -> Any:
    """A module skipped by ``pytest.importorskip`` fails the run under COF_REQUIRE_ALL=1."""
    return _fail((yield))


@_wrapper
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    """The same for a test that calls ``pytest.importorskip`` itself."""
    return _fail((yield))
