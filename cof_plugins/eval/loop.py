"""The multi-turn CoF evaluation loop: think, maybe zoom, answer; batched turn by turn.

Protocol (the Adaptive-CoF paper, arXiv 2505.15436, and README "The paper profile"), with the
choices made here:

- The model sees the *frame*: the input resized by ``core.zoom_step.make_frame`` under the
  run's ``PixelBudget`` ([112^2, 3840^2] by default) and profile (bicubic by default, the
  release's LANCZOS under ``paper``). The loop resizes every image itself and hands
  frame-sized images to the backend, so all backends see the same pixels whatever their
  server-side settings.
- Greedy decoding (``temperature`` 0; above it each turn samples with a seed derived from
  the trajectory's seed and the turn, see ``backends``), ``max_new_tokens`` per turn (512),
  at most ``max_turns`` assistant turns (6) and ``max_images`` images per conversation (6,
  the original included).
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
- Pixels come from ``eval.frames``: one decode per input serves every resolution, draw and
  option order; the full-resolution decode happens only when a trajectory zooms.
- One unit of work (``WorkItem``) is a question at one resolution, in one option order
  (``eval.shuffle``), for one draw (``--samples``); its ``key`` names all four.

The pool keeps up to ``batch_size`` trajectories in flight and refills it as trajectories
finish, so every backend call carries a full turn of work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from PIL import Image

from cof_plugins.core.frame import PixelBudget, get_family, image_tokens
from cof_plugins.core.parser import parse_turn
from cof_plugins.core.profiles import get_profile
from cof_plugins.core.protocol import Protocol, load_protocol
from cof_plugins.core.zoom import ZoomConfig
from cof_plugins.core.zoom_step import CallOutcome, StepConfig, run_turn
from cof_plugins.eval.backends import Backend, Request
from cof_plugins.eval.benchmarks import Sample
from cof_plugins.eval.frames import FrameCache, FrameSpec, SampleImages, resize_long_side
from cof_plugins.eval.seeds import derive_seed

__all__ = [
    "DEFAULT_SWEEP",
    "LoopConfig",
    "Trajectory",
    "WorkItem",
    "advance",
    "resize_long_side",
    "result_key",
    "run_loop",
    "start",
]  # fmt: skip

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
    temperature: float = 0.0  # 0: greedy
    exact_frames: bool = False  # decode in full and resize as the release does, any profile

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
        if not (isinstance(self.temperature, int | float) and 0 <= self.temperature <= 10):
            raise ValueError(f"temperature must be a number in [0, 10], got {self.temperature!r}")
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

    def frame_spec(self) -> FrameSpec:
        return FrameSpec(self.family, self.budget, self.profile, self.exact_frames)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class WorkItem:
    """One question at one resolution, in one option order, for one draw."""

    sample: Sample  # as shown: options already in ``permutation``'s order
    resolution: int | None = None
    draw: int = 0
    order: int = 0
    permutation: tuple[int, ...] | None = None
    seed: int | None = None  # sampling seed of the draw (None: greedy)

    @property
    def key(self) -> str:
        return result_key(self.sample.id, self.resolution, self.draw, self.order)


@dataclass
class Trajectory:
    """One work item as it unfolds."""

    sample: Sample
    resolution: int | None
    draw: int = 0
    order: int = 0
    permutation: tuple[int, ...] | None = None
    seed: int | None = None
    pixels: SampleImages | None = None  # the input's decodes; crops read ``pixels.source``
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
        return result_key(self.sample.id, self.resolution, self.draw, self.order)

    @property
    def assistant_texts(self) -> list[str]:
        return [t["text"] for t in self.turns]

    def finish(self, stop: str) -> None:
        self.stop = stop
        self.latency_s = time.monotonic() - self.started
        self.pixels, self.images = None, []  # free the pixels as soon as possible


def result_key(sample_id: str, resolution: int | None, draw: int = 0, order: int = 0) -> str:
    """The store's unique key: ``id@res``, then ``~o<order>`` and ``#<draw>`` when not 0.

    Runs without draws or shuffles keep the keys they always had, so they resume as before.
    """
    key = f"{sample_id}@{resolution if resolution is not None else 'native'}"
    return key + (f"~o{order}" if order else "") + (f"#{draw}" if draw else "")


def start(
    sample: Sample,
    resolution: int | None,
    cfg: LoopConfig,
    protocol: Protocol,
    frames: FrameCache | None = None,
    *,
    item: WorkItem | None = None,
) -> Trajectory:
    """Build the frame (from the shared decode) and the first messages of one work item
    (``item``: its draw, order and seed; by default the sample's first draw, original order)."""
    item = item or WorkItem(sample, resolution)
    traj = Trajectory(sample, resolution, item.draw, item.order, item.permutation, item.seed)
    frames = frames or FrameCache(cfg.frame_spec(), [resolution])
    try:
        pixels = frames.images(sample.image)
        shown = pixels.frame(resolution)
    except (OSError, ValueError) as exc:
        traj.error = str(exc)
        traj.finish("error")
        return traj
    traj.pixels = pixels
    traj.input_size = pixels.size
    traj.source_size = pixels.source_size(resolution)
    traj.frame = shown.size
    traj.images = [shown]
    traj.messages = protocol.prompt_messages(sample.question, sample.options, sample.kind)
    return traj


def as_work_item(item: WorkItem | tuple[Sample, int | None]) -> WorkItem:
    return item if isinstance(item, WorkItem) else WorkItem(item[0], item[1])


def advance(
    traj: Trajectory,
    text: str,
    tokens: int | None,
    cfg: LoopConfig,
    protocol: Protocol,
    *,
    prompt_tokens: int | None = None,
) -> None:
    """Record one assistant turn, then either end the trajectory or run its tool calls."""
    traj.messages.append({"role": "assistant", "content": text})
    parsed = parse_turn(text)
    turn: dict[str, Any] = {
        "text": text, "tokens": tokens, "prompt_tokens": prompt_tokens, "calls": [],
        "image_tokens": sum(image_tokens(i.size, cfg.family, cfg.budget) for i in traj.images),
    }  # fmt: skip
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
    original = None
    if step.zoom.full_resolution and traj.pixels is not None:
        original = traj.pixels.source(traj.resolution)  # decoded on the first zoom only
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
    work: Iterable[WorkItem | tuple[Sample, int | None]],
    backend: Backend,
    cfg: LoopConfig,
    on_finished: Callable[[list[Trajectory]], None],
    *,
    total: int | None = None,
    progress: bool = True,
    resolutions: Iterable[int | None] | None = None,
) -> None:
    """Run every work item to the end; ``on_finished`` gets each step's finishers.

    ``resolutions`` (a sweep's) lets one reduced decode per input serve them all; work
    should come question by question, largest resolution first (``runner.pending_work``).
    """
    from tqdm import tqdm

    protocol = load_protocol(cfg.protocol)
    frames = FrameCache(cfg.frame_spec(), list(resolutions) if resolutions else [None])
    pending: Iterator = iter(work)
    active: list[Trajectory] = []
    with tqdm(total=total, desc="eval", unit="sample", disable=not progress) as bar:
        while True:
            finished = _refill(active, pending, cfg, protocol, frames)
            if active:
                finished += _step(active, backend, cfg, protocol)
                active[:] = [t for t in active if t.stop is None]
            if finished:
                on_finished(finished)
                bar.update(len(finished))
            if not active and not finished:
                return


def _refill(
    active: list[Trajectory],
    pending: Iterator,
    cfg: LoopConfig,
    protocol: Protocol,
    frames: FrameCache,
) -> list:
    """Top the pool up; samples whose image cannot be read finish at once as errors."""
    failed = []
    while len(active) < cfg.batch_size:
        item = next(pending, None)
        if item is None:
            break
        item = as_work_item(item)
        traj = start(item.sample, item.resolution, cfg, protocol, frames, item=item)
        (failed if traj.stop else active).append(traj)
    return failed


def _step(active: list[Trajectory], backend: Backend, cfg: LoopConfig, protocol: Protocol) -> list:
    """One batched turn for every active trajectory; returns those that ended."""
    requests = [_request(t, cfg) for t in active]
    began = time.monotonic()
    outputs = backend.generate(requests, cfg.max_new_tokens)
    spent = time.monotonic() - began
    if len(outputs) != len(requests):
        raise RuntimeError(f"backend returned {len(outputs)} outputs for {len(requests)} requests")
    ended = []
    for traj, out in zip(active, outputs, strict=True):
        traj.gen_s += spent
        advance(traj, out.text, out.tokens, cfg, protocol, prompt_tokens=out.prompt_tokens)
        if traj.stop is not None:
            ended.append(traj)
    return ended


def _request(traj: Trajectory, cfg: LoopConfig) -> Request:
    """The next turn's request; a sampled turn's seed depends on the draw and the turn only."""
    seed = None
    if cfg.temperature > 0:
        base = traj.seed if traj.seed is not None else derive_seed("item", traj.key)
        seed = derive_seed(base, "turn", len(traj.turns))
    return Request(list(traj.messages), list(traj.images), cfg.temperature, seed)
