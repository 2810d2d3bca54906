"""Chain-of-Spot evaluation: always the ROI first, then the answer on its crop (``cof eval
--method chain-of-spot``).

Per question, two greedy generations through the same backends ``cof eval`` uses
(``eval.backends``: transformers, OpenAI-compatible, vLLM), batched turn by turn:

1. the frame and the ROI request (``core.cos.CosProtocol.roi_turn``);
2. the reply is read strictly (``core.cos.parse_roi`` and ``RoiFrame.read``); its crop
   (``RoiFrame.crop``, the cut SFT data was made with) is the second image, sent with the
   question while the whole image stays in the conversation, as the release does. An
   unusable reply (unparsable, degenerate, outside the image) sends the whole image as the
   second image instead, as the release does, and is COUNTED: ``fallback_rate`` and
   ``fallbacks`` by problem are in every summary.

Reused from ``cof eval``: the run spec's common part (``eval.spec.RunSpec``: benchmark,
model, backend, and the settings they record), the benchmark reader (``eval.benchmarks``,
every layout), the backends, the resumable result store and its settings check
(``eval.store``), rule-based answer matching (``core.answers``). No judge: an answer no rule
settles counts as wrong and is marked ``undecided``. With ``boxes`` (grounded annotations
whose ids are the benchmark's, e.g. ``cof data scenes`` output), every record also says
whether the ROI overlaps the target box: ``roi_overlap_rate`` (a fallback counts as no ROI,
so as no overlap) and the IoU with the target. Images enter as frames
(``core.zoom_step.make_frame``, bicubic): crops as LLaMA-Factory's CoF plugin sized them in
training.
"""

from __future__ import annotations

import statistics
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from cof_plugins.core.answers import rule_match
from cof_plugins.core.atomic import write_json
from cof_plugins.core.cos import Box, RoiFrame, box_iou, load_cos_protocol, overlaps, parse_roi
from cof_plugins.core.frame import PixelBudget, get_family
from cof_plugins.core.zoom_step import make_frame
from cof_plugins.eval.backends import Backend, Request
from cof_plugins.eval.benchmarks import Sample
from cof_plugins.eval.lock import RunLock
from cof_plugins.eval.spec import RUN_DEFAULTS, RunSpec, backend_options
from cof_plugins.eval.store import ResultStore, check_resume, check_run_dir, write_run_info

SUMMARY = "summary.json"
METHOD = "chain-of-spot"


@dataclass(frozen=True)
class CosEvalSpec(RunSpec):
    """What to evaluate (``RunSpec``: benchmark, model, backend) and Chain-of-Spot's
    settings; ``settings()`` must match when a run directory is resumed."""

    boxes: str | None = None  # grounded annotations (id, bbox) for the ROI overlap
    protocol: str = "chain-of-spot"
    family: str = "qwen2_5_vl"
    min_pixels: int = 112 * 112
    max_pixels: int = 3840 * 3840
    max_new_tokens: int = 128  # per turn, the release's (model_vqa_loader_CoS.py)
    batch_size: int = 8

    def __post_init__(self) -> None:
        get_family(self.family)
        PixelBudget(self.min_pixels, self.max_pixels)
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("batch_size and max_new_tokens must be >= 1")

    @property
    def budget(self) -> PixelBudget:
        return PixelBudget(self.min_pixels, self.max_pixels)

    def settings(self) -> dict[str, Any]:
        return {
            **self.run_settings(),
            "method": METHOD,
            "boxes": str(Path(self.boxes).resolve()) if self.boxes else None,
            "protocol": self.protocol,
            "family": self.family,
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
            "max_new_tokens": self.max_new_tokens,
            "protocol_sha256": load_cos_protocol(self.protocol).protocol.digest,
        }


def load_targets(path: str | Path | None) -> dict[str, Box]:
    """id -> target box (original pixels) from grounded annotations; rows without one skip."""
    if not path:
        return {}
    from cof_plugins.data.annotations import normalize_all
    from cof_plugins.data.rows import read_rows

    good, bad = normalize_all(read_rows(path))
    if bad:
        raise ValueError(f"--boxes {path}: {len(bad)} unusable row(s), first: {bad[0]}")
    return {a.id: tuple(a.bbox) for a in good if a.bbox is not None}  # type: ignore[misc]


def run_cos_eval(
    spec: CosEvalSpec,
    run_dir: str | Path,
    *,
    backend: Backend | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate what ``run_dir`` still lacks; write and return the summary."""
    bench = spec.load()
    targets = load_targets(spec.boxes)
    check_run_dir(run_dir)
    with RunLock(run_dir):
        return _run_locked(spec, run_dir, bench, targets, backend, progress)


def _run_locked(spec, run_dir, bench, targets, backend, progress) -> dict[str, Any]:
    settings = spec.settings()  # once: it reads the weights' fingerprint
    resumed = check_resume(run_dir, settings, RUN_DEFAULTS)
    store = ResultStore(run_dir)
    todo = [s for s in bench.samples if _key(s) not in store.done]
    if todo:
        owned = backend is None
        backend = backend or spec.make_backend(spec.budget, max_images=2)
        if not resumed:
            write_run_info(
                run_dir,
                {
                    "settings": settings,
                    "model": backend.describe(),
                    "benchmark": {"name": bench.name, "samples": len(bench.samples)},
                },
            )
        try:
            _evaluate(todo, backend, spec, targets, store, progress)
        finally:
            if owned:
                backend.close()
    summary = summarize(store.records)
    write_json(Path(run_dir) / SUMMARY, summary)
    return summary


def _key(sample: Sample) -> str:
    return f"{sample.id}@native"  # eval.loop.result_key's form, so reports can join runs


def _evaluate(todo, backend, spec, targets, store, progress) -> None:
    from tqdm import tqdm

    with tqdm(total=len(todo), desc="chain-of-spot", unit="sample", disable=not progress) as bar:
        for start in range(0, len(todo), spec.batch_size):
            batch = todo[start : start + spec.batch_size]
            store.append(evaluate_batch(batch, backend, spec, targets))
            bar.update(len(batch))


def evaluate_batch(
    samples: list[Sample], backend: Backend, spec: CosEvalSpec, targets: dict[str, Box]
) -> list[dict[str, Any]]:
    """Both turns for a batch of questions; one record per question."""
    cos = load_cos_protocol(spec.protocol)
    items = [_Item.start(s, cos, spec) for s in samples]
    live = [i for i in items if i.error is None]
    replies = backend.generate([i.request() for i in live], spec.max_new_tokens)
    for item, reply in zip(live, replies, strict=True):
        item.read_roi(reply.text, reply.tokens, cos, spec)
    answers = backend.generate([i.request() for i in live], spec.max_new_tokens)
    for item, answer in zip(live, answers, strict=True):
        item.answer(answer.text, answer.tokens)
    return [i.record(targets.get(i.sample.id)) for i in items]


@dataclass
class _Item:
    """One question as its two turns unfold."""

    sample: Sample
    original: Image.Image | None = None
    messages: list[dict[str, str]] = field(default_factory=list)
    images: list[Image.Image] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    tokens: list[int | None] = field(default_factory=list)
    roi: Box | None = None
    problem: str | None = None
    error: str | None = None

    @classmethod
    def start(cls, sample: Sample, cos, spec: CosEvalSpec) -> _Item:
        item = cls(sample)
        try:
            item.original = sample.image.load()
        except (OSError, ValueError) as exc:
            item.error = str(exc)
            return item
        frame = make_frame(item.original, spec.family, spec.budget)
        item.messages = [
            *cos.system_messages(),
            {"role": "user", "content": cos.roi_turn(sample.question)},
        ]
        item.images = [frame]
        return item

    def request(self) -> Request:
        return Request(list(self.messages), list(self.images))

    def read_roi(self, text: str, tokens: int | None, cos, spec: CosEvalSpec) -> None:
        """Parse turn 1; queue turn 2 with the crop, or with the whole image on a bad box."""
        self._said(text, tokens)
        frame = RoiFrame.of(cos, self.original.size, spec.family, spec.budget)
        parsed = parse_roi(text)
        self.problem = parsed.problem
        if parsed.values is not None:
            self.roi, self.problem = frame.read(parsed.values)
        second = self.original if self.roi is None else frame.crop(self.original, self.roi)
        self.images.append(make_frame(second, spec.family, spec.budget))
        s = self.sample
        turn = cos.answer_turn(s.question, s.options, s.kind)
        self.messages.append({"role": "user", "content": turn})

    def answer(self, text: str, tokens: int | None) -> None:
        self._said(text, tokens)

    def _said(self, text: str, tokens: int | None) -> None:
        self.messages.append({"role": "assistant", "content": text})
        self.texts.append(text)
        self.tokens.append(tokens)

    def record(self, target: Box | None) -> dict[str, Any]:
        s = self.sample
        pred = self.texts[1].strip() if len(self.texts) > 1 else None
        correct = rule_match(pred, s.answer, kind=s.kind, options=s.options) if pred else False
        roi = list(self.roi) if self.roi else None
        record = {
            "key": _key(s),
            "id": s.id,
            "category": s.category,
            "kind": s.kind,
            "question": s.question,
            "options": list(s.options) if s.options else None,
            "answer": s.answer,
            "image": s.image.to_dict(),
            "size": list(self.original.size) if self.original else None,
            "replies": self.texts,
            "tokens": self.tokens,
            "roi": roi,
            "roi_problem": self.problem,
            "fallback": self.error is None and self.roi is None,
            "pred": pred,
            "correct": bool(correct),
            "error": self.error,
            "decided_by": "rules" if correct is not None else "undecided",
            "target": list(target) if target else None,
        }
        if target is not None:
            record["roi_overlap"] = bool(self.roi and overlaps(self.roi, target))
            record["roi_iou"] = round(box_iou(self.roi, target), 4) if self.roi else 0.0
        return record


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Rates in [0, 1]: accuracy, fallback (by problem), ROI overlap with the target."""
    n = len(records)
    ran = [r for r in records if not r.get("error")]
    with_target = [r for r in ran if r.get("target")]
    return {
        "method": METHOD,
        "n": n,
        "errors": n - len(ran),
        "accuracy": _rate(sum(r["correct"] for r in records), n),
        "fallback_rate": _rate(sum(r["fallback"] for r in ran), len(ran)),
        "fallbacks": dict(Counter(r["roi_problem"] for r in ran if r["fallback"])),
        "n_with_target": len(with_target),
        "roi_overlap_rate": _rate(sum(r["roi_overlap"] for r in with_target), len(with_target)),
        "roi_iou_mean": _mean([r["roi_iou"] for r in with_target]),
        "undecided": sum(1 for r in records if r.get("decided_by") == "undecided"),
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


# ---------------------------------------------------------------- cof eval / cof report

# cof eval options the Chain-of-Spot loop has no use for, with their defaults.
_COF_ONLY = (
    ("sweep", None),
    ("profile", "default"),
    ("max_turns", 6),
    ("max_images", 6),
    ("crop_max_pixels", None),
    ("samples", 1),
    ("temperature", 0.0),
    ("shuffle_options", 0),
    ("exact_frames", False),
)


def run_from_args(args: Any) -> int:
    """``cof eval --method chain-of-spot``: the parsed ``cof eval`` arguments."""
    from cof_plugins.core.atomic import check_writable  # its OutputError is a ValueError
    from cof_plugins.eval.backends import BackendUnavailable
    from cof_plugins.eval.benchmarks import BenchmarkError
    from cof_plugins.eval.store import RunDirError

    set_cof_only = [f"--{k.replace('_', '-')}" for k, d in _COF_ONLY if getattr(args, k, d) != d]
    if set_cof_only:
        print(
            f"cof eval: {', '.join(set_cof_only)} do(es) not apply to --method {METHOD}",
            file=sys.stderr,
        )
        return 2
    try:
        check_writable(args.run_dir, "--run-dir")  # before any model loads
        spec = CosEvalSpec(
            benchmark=args.data,
            model=args.model,
            backend=args.backend,
            format=args.format,
            image_root=args.image_root,
            limit=args.limit,
            skip_bad_rows=args.skip_bad_rows,
            boxes=args.boxes,
            protocol=args.protocol or "chain-of-spot",
            family=args.family,
            min_pixels=args.min_pixels,
            max_pixels=args.max_pixels,
            max_new_tokens=args.max_new_tokens or 128,
            batch_size=args.batch_size,
            seed=args.seed,
            backend_options=backend_options(args),
        )
        summary = run_cos_eval(spec, args.run_dir, progress=not args.no_progress)
    except (BenchmarkError, RunDirError, BackendUnavailable, ValueError, OSError) as exc:
        print(f"cof eval: {exc}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    print(f"results in {args.run_dir}; `cof report {args.run_dir} -o REPORT_DIR` for a report")
    return 0


def format_summary(summary: dict[str, Any]) -> str:
    def pct(key: str) -> str:
        value = summary.get(key)
        return "-" if value is None else f"{100 * value:.1f}%"

    return (
        f"chain-of-spot  n {summary['n']}  accuracy {pct('accuracy')}  fallback "
        f"{pct('fallback_rate')} {summary['fallbacks'] or ''}  ROI overlaps target "
        f"{pct('roi_overlap_rate')} (of {summary['n_with_target']})"
    )


def is_cos_run(run_dir: str | Path) -> bool:
    """True for a run directory ``cof eval --method chain-of-spot`` wrote."""
    from cof_plugins.eval.store import read_run_info

    try:
        return read_run_info(run_dir).get("settings", {}).get("method") == METHOD
    except (ValueError, OSError):
        return False


def report_cos_runs(run_dirs: list[Path], output: Path, drawings: int) -> int:
    """``cof report`` over Chain-of-Spot runs (all of them must be)."""
    from cof_plugins.eval.store import read_run_info
    from cof_plugins.methods.cos_report import write_report

    others = [str(d) for d in run_dirs if not is_cos_run(d)]
    if others:
        print(
            f"cof report: {', '.join(others)} are not chain-of-spot runs; report them separately",
            file=sys.stderr,
        )
        return 2
    names: dict[str, Path] = {}
    for d in run_dirs:
        name = Path(d).resolve().name
        names[name if name not in names else f"{name} ({len(names) + 1})"] = Path(d)
    settings = read_run_info(run_dirs[0])["settings"]
    md, page = write_report(
        names, output, drawings=drawings, protocol=settings["protocol"], family=settings["family"]
    )
    print(f"wrote {md} and {page}")
    return 0
