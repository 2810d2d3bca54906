"""Health check of a judge server, for `cof judge check` and for launch scripts to fail fast.

It checks more than reachability: a server can be up yet serve another model name, or serve
a model that does not follow the prompt. So it lists the served models and judges two known
pairs, one equivalent and one not, each of which a working judge must get right.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cof_plugins.core.redact import redact_url
from cof_plugins.judge.config import LAUNCH_HINT
from cof_plugins.judge.errors import JudgeRequestError
from cof_plugins.judge.prompt import build_messages

if TYPE_CHECKING:
    from cof_plugins.judge.client import JudgeClient

# (name, question, ground truth, answer, expected verdict); not among the few-shot examples.
PROBES = (
    ("equivalent", "What colour is the parked car?", "blue", "The car is blue.", True),
    ("different", "How many dogs are in the picture?", "2", "There are five dogs.", False),
)


@dataclass
class ProbeResult:
    name: str
    expected: bool
    got: bool | None = None
    raw: str = ""
    latency_s: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.got is self.expected


@dataclass
class HealthReport:
    url: str | None
    model: str | None
    models: list[str] = field(default_factory=list)
    models_latency_s: float | None = None
    probes: list[ProbeResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems and bool(self.probes) and all(p.ok for p in self.probes)

    def render(self) -> str:
        """A human-readable report: what was found, what is wrong, and how to fix it."""
        lines = [f"judge check: {'HEALTHY' if self.healthy else 'UNHEALTHY'}"]
        lines.append(f"  url:   {redact_url(self.url) or '(unset: COF_JUDGE_URL)'}")
        lines.append(f"  model: {self.model or '(unset: COF_JUDGE_MODEL)'}")
        if self.models_latency_s is not None:
            served = ", ".join(self.models) or "(none)"
            lines.append(f"  served models ({self.models_latency_s:.3f} s): {served}")
        for p in self.probes:
            got = "-" if p.got is None else int(p.got)
            took = "" if p.latency_s is None else f" in {p.latency_s:.3f} s"
            status = "ok" if p.ok else "WRONG" if p.error is None else "FAILED"
            lines.append(
                f"  probe {p.name!r}: expected {int(p.expected)}, got {got}{took} [{status}]"
                + (f" ({p.error})" if p.error else f" reply={p.raw[:60]!r}")
            )
        lines += ["problems:"] + [f"  - {x}" for x in self.problems] if self.problems else []
        lines += ["how to fix:"] + [f"  - {x}" for x in self.fixes] if self.fixes else []
        return "\n".join(lines)


async def run_health_check(client: JudgeClient) -> HealthReport:
    """List the served models, then judge the known pairs (no cache, retries or breaker)."""
    cfg = client.config
    report = HealthReport(url=cfg.url, model=cfg.model)
    if not cfg.url:
        report.problems.append("COF_JUDGE_URL is not set")
        report.fixes.append(f"pass --url or {LAUNCH_HINT}")
        return report
    if not await _check_models(client, report):
        return report
    model = cfg.model or (report.models[0] if report.models else None)
    if model is not None:
        for probe in PROBES:
            report.probes.append(await _run_probe(client, model, *probe))
    bad = [p for p in report.probes if not p.ok]
    if bad:
        report.problems.append(f"{len(bad)} of {len(report.probes)} probe(s) failed")
        report.fixes.append(
            "if requests fail, check the server log and COF_JUDGE_TIMEOUT; if verdicts are "
            "wrong, serve a stronger instruction-following judge model"
        )
    return report


async def _check_models(client: JudgeClient, report: HealthReport) -> bool:
    """Fill in the served models; return False when probing further makes no sense."""
    start = time.perf_counter()
    try:
        report.models = await client.list_models()
    except JudgeRequestError as exc:
        report.problems.append(f"cannot list models: {exc}")
        report.fixes.append(
            f"is the server running and does COF_JUDGE_URL end in /v1? Otherwise {LAUNCH_HINT}"
        )
        return False
    report.models_latency_s = time.perf_counter() - start
    if not report.models:
        report.problems.append("the server serves no models")
        return False
    if not report.model:
        report.problems.append("COF_JUDGE_MODEL is not set (probing the first served model)")
        report.fixes.append(f"export COF_JUDGE_MODEL={report.models[0]}")
    elif report.model not in report.models:
        report.problems.append(f"model {report.model!r} is not served here")
        report.fixes.append(f"set COF_JUDGE_MODEL to one of: {', '.join(report.models)}")
        return False
    return True


async def _run_probe(
    client: JudgeClient, model: str, name: str, question: str, gt: str, answer: str, expected: bool
) -> ProbeResult:
    result = ProbeResult(name=name, expected=expected)
    start = time.perf_counter()
    try:
        result.got, result.raw = await client.ask(build_messages(question, answer, gt), model)
    except JudgeRequestError as exc:
        result.error = str(exc)
    result.latency_s = time.perf_counter() - start
    return result
