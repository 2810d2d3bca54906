"""The multi-turn CoF evaluation loop: think, maybe zoom, answer; batched turn by turn.

Protocol (the Adaptive-CoF paper, arXiv 2505.15436, and README "The paper profile"), with the
choices made here:

- The model sees the *frame*: the input resized by ``core.zoom_step.make_frame`` under the
  run's ``PixelBudget`` ([112^2, 3840^2] by default) and profile (bicubic by default, the
  release's LANCZOS under ``paper``). The loop resizes every image itself and hands
  frame-sized images to the backend, so all backends see the same pixels whatever their
  server-side settings.
- Greedy decoding, ``max_new_tokens`` per turn (512), at most ``max_turns`` assistant turns
  (6) and ``max_images`` images per conversation (6, the original included).
- A turn's tool calls go through ``core.zoom_step.run_turn``, the code the RL tool runs too:
  the profile decides which calls run (the first, in both profiles' evaluation), the crop's
  geometry and pixels, and what a call that yields no crop returns (the tool's message by
  default; the whole frame scaled 2x under ``paper``, as the release did). Every crop is cut
  from the *first* image, never an earlier crop: from the full-resolution input by default,
  from the frame under ``paper``.
- The replies to a turn form one user turn, joined as the chat template joins the tool
  messages of an RL rollout.
- A turn without any tool-call attempt ends the trajectory; so does the last allowed turn.
- Sweeps resize the input's long side to each resolution (up or down) before the frame;
  crops then come from that resized input, so a sweep measures what each resolution holds.

The pool keeps up to ``batch_size`` trajectories in flight and refills it as trajectories
finish, so every backend call carries a full turn of work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from PIL import Image

from cof_plugins.core.frame import PixelBudget, get_family
from cof_plugins.core.parser import parse_turn
from cof_plugins.core.profiles import get_profile
from cof_plugins.core.protocol import Protocol, load_protocol
from cof_plugins.core.zoom import ZoomConfig, resample_filter
from cof_plugins.core.zoom_step import CallOutcome, StepConfig, make_frame, run_turn
from cof_plugins.eval.backends import Backend, Request
from cof_plugins.eval.benchmarks import Sample

DEFAULT_SWEEP = (224, 336, 448, 672, 1024, 1920, 2560, 3840)


@dataclass(frozen=True)
class LoopConfig:
    """Everything that decides what the model is shown; recorded in run.json."""

    family: str = "qwen2_5_vl"
    protocol: str = "unified"
    min_pixels: int = 112 * 112
    max_pixels: int = 3840 * 3840
    crop_max_pixels: int | None = None  # default: max_pixels (the release's eval cap)
    max_turns: int = 6
    max_images: int = 6
    max_new_tokens: int = 512
    # core.profiles name: "default" or "paper" (the release's evaluation exactly).
    profile: str = "default"
    batch_size: int = 8

    def __post_init__(self) -> None:
        get_family(self.family)
        try:
            get_profile(self.profile)
        except KeyError as exc:
            raise ValueError(str(exc)) from None
        PixelBudget(self.min_pixels, self.max_pixels)
        for name in ("max_turns", "max_images", "max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        self.zoom_config()

    @property
    def budget(self) -> PixelBudget:
        return PixelBudget(self.min_pixels, self.max_pixels)

    def step_config(self, suffix: str = "") -> StepConfig:
        """The evaluation's zoom step; ``suffix`` is the protocol's instruction."""
        cap = self.crop_max_pixels or self.max_pixels
        caps = {"min_pixels": self.min_pixels, "max_pixels": cap}
        return StepConfig.for_stage(
            self.profile, "eval", family=self.family, suffix=suffix, zoom=caps,
            max_images=self.max_images,
        )  # fmt: skip

    def zoom_config(self) -> ZoomConfig:
        return self.step_config().zoom

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Trajectory:
    """One sample at one resolution, as it unfolds."""

    sample: Sample
    resolution: int | None
    source: Image.Image | None = None  # the input the zooms read (after any sweep resize)
    frame: tuple[int, int] = (0, 0)
    input_size: tuple[int, int] = (0, 0)  # the file's size
    source_size: tuple[int, int] = (0, 0)  # after the sweep resize (= input_size without one)
    messages: list[dict[str, str]] = field(default_factory=list)
    images: list[Image.Image] = field(default_factory=list)
    turns: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    gen_s: float = 0.0
    latency_s: float = 0.0
    stop: str | None = None
    error: str | None = None

    @property
    def key(self) -> str:
        return result_key(self.sample.id, self.resolution)

    @property
    def assistant_texts(self) -> list[str]:
        return [t["text"] for t in self.turns]

    def finish(self, stop: str) -> None:
        self.stop = stop
        self.latency_s = time.monotonic() - self.started
        self.source, self.images = None, []  # free the pixels as soon as possible


def result_key(sample_id: str, resolution: int | None) -> str:
    """The store's unique key: one result per sample and resolution."""
    return f"{sample_id}@{resolution if resolution is not None else 'native'}"


def resize_long_side(image: Image.Image, long_side: int, resample: str = "bicubic") -> Image.Image:
    """Scale so the longer side is ``long_side`` pixels, keeping the aspect ratio."""
    w, h = image.size
    scale = long_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return image if size == image.size else image.resize(size, resample_filter(resample))


def start(
    sample: Sample, resolution: int | None, cfg: LoopConfig, protocol: Protocol
) -> Trajectory:
    """Load the image, apply the sweep resize, build the frame and the first messages."""
    traj = Trajectory(sample, resolution)
    try:
        image = sample.image.load()
    except (OSError, ValueError) as exc:
        traj.error = str(exc)
        traj.finish("error")
        return traj
    traj.input_size = image.size
    resample = get_profile(cfg.profile).frame_resample
    traj.source = resize_long_side(image, resolution, resample) if resolution else image
    traj.source_size = traj.source.size
    shown = make_frame(traj.source, cfg.family, cfg.budget, cfg.profile)
    traj.frame = shown.size
    traj.images = [shown]
    traj.messages = protocol.prompt_messages(sample.question, sample.options, sample.kind)
    return traj


def advance(
    traj: Trajectory, text: str, tokens: int | None, cfg: LoopConfig, protocol: Protocol
) -> None:
    """Record one assistant turn, then either end the trajectory or run its tool calls."""
    traj.messages.append({"role": "assistant", "content": text})
    parsed = parse_turn(text)
    turn: dict[str, Any] = {"text": text, "tokens": tokens, "calls": []}
    traj.turns.append(turn)
    if not parsed.attempted_tool:
        traj.finish(
            "answer" if parsed.answer is not None or parsed.boxed is not None else "no_answer"
        )
        return
    if len(traj.turns) >= cfg.max_turns:
        traj.finish("max_turns")
        return
    step = cfg.step_config(protocol.user_suffix)
    original = traj.source if step.zoom.full_resolution else None
    result = run_turn(parsed.attempts, traj.images[0], original, step, images_held=len(traj.images))
    turn["calls"].extend(call_record(o) for o in result.outcomes)
    if result.not_run:
        turn["calls_not_run"] = result.not_run
    traj.images.extend(result.images)
    traj.messages.append({"role": "user", "content": result.user_content()})


def call_record(outcome: CallOutcome) -> dict[str, Any]:
    """What the run directory keeps about one call (reports and ``cof viz`` read it)."""
    kind = {"valid": "crop", "parse_error": "parse", "invalid": "box"}.get(outcome.kind, "limit")
    record: dict[str, Any] = {
        "ok": outcome.kind == "valid", "kind": kind, "message": outcome.message,
        "bbox": list(outcome.bbox) if outcome.bbox else None,
        "box": list(outcome.box) if outcome.box else None,
    }  # fmt: skip
    result = outcome.result
    if result is not None and result.problem == "degenerate":
        record["problem"] = "degenerate"
    if outcome.kind == "valid" and result is not None:
        record["enlarged_box"] = list(result.enlarged_box or ())
    if outcome.image is not None:
        record.update(crop_size=list(outcome.image.size), source=outcome.source)
    return record


def run_loop(
    work: Iterable[tuple[Sample, int | None]],
    backend: Backend,
    cfg: LoopConfig,
    on_finished: Callable[[list[Trajectory]], None],
    *,
    total: int | None = None,
    progress: bool = True,
) -> None:
    """Run every (sample, resolution) to the end; ``on_finished`` gets each step's finishers."""
    from tqdm import tqdm

    protocol = load_protocol(cfg.protocol)
    pending: Iterator[tuple[Sample, int | None]] = iter(work)
    active: list[Trajectory] = []
    with tqdm(total=total, desc="eval", unit="sample", disable=not progress) as bar:
        while True:
            finished = _refill(active, pending, cfg, protocol)
            if active:
                finished += _step(active, backend, cfg, protocol)
                active[:] = [t for t in active if t.stop is None]
            if finished:
                on_finished(finished)
                bar.update(len(finished))
            if not active and not finished:
                return


def _refill(
    active: list[Trajectory], pending: Iterator, cfg: LoopConfig, protocol: Protocol
) -> list:
    """Top the pool up; samples whose image cannot be read finish at once as errors."""
    failed = []
    while len(active) < cfg.batch_size:
        item = next(pending, None)
        if item is None:
            break
        traj = start(item[0], item[1], cfg, protocol)
        (failed if traj.stop else active).append(traj)
    return failed


def _step(active: list[Trajectory], backend: Backend, cfg: LoopConfig, protocol: Protocol) -> list:
    """One batched turn for every active trajectory; returns those that ended."""
    requests = [Request(list(t.messages), list(t.images)) for t in active]
    began = time.monotonic()
    outputs = backend.generate(requests, cfg.max_new_tokens)
    spent = time.monotonic() - began
    if len(outputs) != len(requests):
        raise RuntimeError(f"backend returned {len(outputs)} outputs for {len(requests)} requests")
    ended = []
    for traj, out in zip(active, outputs, strict=True):
        traj.gen_s += spent
        advance(traj, out.text, out.tokens, cfg, protocol)
        if traj.stop is not None:
            ended.append(traj)
    return ended
