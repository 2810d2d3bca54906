"""``cof eval``, ``cof report`` and ``cof viz``: run a benchmark, report runs, draw one trajectory.

    cof eval --data vstar_bench/ --model ckpt/ --run-dir runs/vstar
    cof eval --data hr_bench_4k.tsv --backend openai --url http://127.0.0.1:8000/v1 \\
             --model served-name --run-dir runs/hr4k --sweep 224,448,1024,1920,3840
    cof report runs/vstar runs/vstar_baseline -o reports/vstar
    cof viz runs/vstar --sample 17 -o traj.png
    cof viz rollouts.jsonl --index 3 -o traj.png

A run directory is resumable: run the same ``cof eval`` again after a crash or a kill and
only the missing samples run. One ``cof eval`` at a time per run directory (a lock).

    cof eval ... --samples 4 --temperature 0.7      # Avg@4 and pass@4, seeded per question
    cof eval ... --shuffle-options 3                 # original order plus 3 shuffled ones
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cof_plugins.core.frame import FAMILIES, PixelBudget
from cof_plugins.core.profiles import PROFILES

PROFILE_NAMES = tuple(PROFILES.names())


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a CoF model on a benchmark (multi-turn zoom loop, resumable)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _eval_arguments(parser)
    parser.set_defaults(func=run)
    _add_report(subparsers)
    _add_viz(subparsers)
    return parser


def _eval_arguments(parser: argparse.ArgumentParser) -> None:
    from cof_plugins.eval.benchmarks import BENCHMARK_FORMATS

    data = parser.add_argument_group("benchmark")
    data.add_argument("--data", required=True, help="benchmark file or V* folder")
    data.add_argument(
        "--format",
        default="auto",
        choices=["auto", *BENCHMARK_FORMATS.names()],
        help="layout (default: guess from the path)",
    )
    data.add_argument(
        "--image-root", help="folder image paths are relative to (default: the file's)"
    )
    data.add_argument("--limit", type=int, help="evaluate only the first N samples")
    data.add_argument(
        "--skip-bad-rows", action="store_true", help="evaluate the rest; list the bad rows"
    )
    data.add_argument(
        "--method",
        default="cof",
        choices=("cof", "chain-of-spot"),
        help="cof: the multi-turn zoom loop; chain-of-spot: ROI box first, then the answer on "
        "its crop (cof_plugins/methods/cos_eval.py; --sweep, --profile, --max-turns, "
        "--max-images and the judge do not apply)",
    )
    data.add_argument(
        "--boxes", help="chain-of-spot: grounded annotations (id, bbox) to score ROI overlap"
    )
    model = parser.add_argument_group("model")
    model.add_argument("--model", required=True, help="checkpoint path, or served model name")
    model.add_argument(
        "--backend", default="transformers", choices=("transformers", "openai", "vllm")
    )
    model.add_argument("--url", help="openai backend: base URL, e.g. http://127.0.0.1:8000/v1")
    model.add_argument(
        "--concurrency", type=int, default=8, help="openai backend: parallel requests"
    )
    model.add_argument("--device", default="auto", help="transformers backend: cpu, cuda, cuda:1")
    model.add_argument("--dtype", default="auto", help="transformers backend: bfloat16, float32")
    model.add_argument("--tensor-parallel-size", type=int, help="vllm backend")
    proto = parser.add_argument_group("protocol")
    proto.add_argument("--family", default="qwen2_5_vl", choices=sorted(FAMILIES))
    proto.add_argument(
        "--protocol",
        help="protocol preset name (cof ls) or your own YAML file (default: "
        "unified; chain-of-spot with --method chain-of-spot)",
    )
    proto.add_argument("--min-pixels", type=int, default=PixelBudget.min_pixels)
    proto.add_argument("--max-pixels", type=int, default=PixelBudget.max_pixels)
    proto.add_argument("--crop-max-pixels", type=int, help="crop pixel cap (default --max-pixels)")
    proto.add_argument("--max-turns", type=int, default=6, help="assistant turns per sample")
    proto.add_argument("--max-images", type=int, default=6, help="images per conversation")
    proto.add_argument(
        "--max-new-tokens", type=int, help="tokens per turn (default: 512; chain-of-spot 128)"
    )
    proto.add_argument("--sweep", help="long sides to resize inputs to, e.g. 224,336,448,672,1024")
    proto.add_argument(
        "--profile",
        default="default",
        choices=PROFILE_NAMES,
        help="paper: the release's evaluation exactly (LANCZOS frame and crops cut from it, "
        "first call of a turn, whole frame 2x for a failed call, first <answer>, letter-only "
        "judge reference); see README 'The paper profile'",
    )
    run = parser.add_argument_group("run")
    run.add_argument("--run-dir", required=True, type=Path, help="results go here (resumable)")
    run.add_argument("--batch-size", type=int, default=8, help="trajectories in flight per turn")
    run.add_argument("--seed", type=int, default=0, help="seeds draws, shuffles, bootstrap")
    run.add_argument(
        "--samples", type=int, default=1, help="trajectories per question (Avg@k, pass@k)"
    )
    run.add_argument(
        "--temperature", type=float, default=0.0, help="sampling temperature (0: greedy)"
    )
    run.add_argument(
        "--shuffle-options",
        type=int,
        default=0,
        metavar="N",
        help="also evaluate N seeded shuffles of each question's options (answer follows)",
    )
    run.add_argument(
        "--exact-frames",
        action="store_true",
        help="decode inputs in full and resize twice, as the release does (default: one "
        "reduced decode per input; --profile paper always uses exact frames)",
    )
    run.add_argument("--no-judge", action="store_true", help="never call the LLM judge")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from cof_plugins.core.atomic import check_writable
    from cof_plugins.eval.backends import BackendUnavailable
    from cof_plugins.eval.benchmarks import BenchmarkError
    from cof_plugins.eval.store import RunDirError

    if args.method == "chain-of-spot":
        from cof_plugins.methods.cos_eval import run_from_args

        return run_from_args(args)
    try:
        check_writable(args.run_dir, "--run-dir")  # before any model loads
        spec = spec_from_args(args)
        from cof_plugins.eval.runner import run_eval

        summary = run_eval(spec, args.run_dir, progress=not args.no_progress)
    except (BenchmarkError, RunDirError, BackendUnavailable, ValueError) as exc:
        print(f"cof eval: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f" {exc.filename}:" if exc.filename else ""
        print(f"cof eval:{where} {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    print(f"results in {args.run_dir}; `cof report {args.run_dir} -o REPORT_DIR` for a report")
    return 0


def spec_from_args(args: argparse.Namespace):
    from cof_plugins.core.protocol import load_protocol
    from cof_plugins.eval.loop import LoopConfig
    from cof_plugins.eval.runner import EvalSpec, parse_sweep
    from cof_plugins.eval.spec import backend_options

    protocol = args.protocol or "unified"
    method = load_protocol(protocol).method
    if method != "cof":
        raise ValueError(
            f"--protocol {protocol} is for method {method}; pass --method {method}, or a CoF "
            "protocol (cof ls)"
        )
    loop = LoopConfig(
        family=args.family, protocol=protocol, min_pixels=args.min_pixels,
        max_pixels=args.max_pixels, crop_max_pixels=args.crop_max_pixels,
        max_turns=args.max_turns, max_images=args.max_images,
        max_new_tokens=args.max_new_tokens or 512,
        profile=args.profile, batch_size=args.batch_size, temperature=args.temperature,
        exact_frames=args.exact_frames,
    )  # fmt: skip
    return EvalSpec(
        benchmark=args.data, model=args.model, backend=args.backend, format=args.format,
        image_root=args.image_root, limit=args.limit, skip_bad_rows=args.skip_bad_rows,
        loop=loop, sweep=parse_sweep(args.sweep), seed=args.seed, judge=not args.no_judge,
        samples=args.samples, shuffle_options=args.shuffle_options,
        backend_options=backend_options(args),
    )  # fmt: skip


def format_summary(summary: dict) -> str:
    """A few lines for the terminal: overall, per category, per resolution when sweeping."""

    def line(name: str, s: dict) -> str:
        acc = "-" if s["accuracy"] is None else f"{s['accuracy']:.2f}"
        ci = s.get("accuracy_ci")
        ci_text = f"[{ci[0]:.1f}, {ci[1]:.1f}]" if ci else ""
        extra = f"  pass@{s['k']} {s['pass_at_k']:.2f}" if s.get("pass_at_k") is not None else ""
        return (
            f"{name:<14} acc {acc:>6} {ci_text:<14} n {s['n']:>5}  "
            f"zoom {s['zoom_calls'] or 0:.2f}  tokens {s['gen_tokens'] or 0:.0f}  "
            f"images {s['images'] or 0:.2f}{extra}"
        )

    lines = [line("overall", summary["overall"])]
    lines += [line(c, s) for c, s in summary["by_category"].items()]
    if len(summary["by_resolution"]) > 1:
        lines += [line(f"@{r}", p["overall"]) for r, p in summary["by_resolution"].items()]
    orders = summary.get("option_orders")
    if orders:
        lines.append(
            f"option orders  original {orders['original']['accuracy']}  shuffled "
            f"{orders['shuffled']['accuracy']}  verdict changes with the order for "
            f"{orders['changed']}/{orders['questions']} questions"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- report / viz


def _add_report(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="Markdown + self-contained HTML report of one or more eval runs",
        description="Tables, plots per resolution and category, and drawn trajectories; "
        "several runs side by side.",
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run directories of `cof eval`")
    parser.add_argument(
        "-o", "--output", type=Path, default=Path("cof_report"), help="output folder"
    )
    parser.add_argument("--trajectories", type=int, default=4, help="trajectories drawn per run")
    parser.add_argument(
        "--legibility",
        type=Path,
        help="train.json of `cof data synthesize` over the evaluated annotations: adds zoom and "
        "direct-answer rates split by whether each target is legible in the frame",
    )
    parser.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from cof_plugins.core.atomic import OutputError, check_writable
    from cof_plugins.eval.adaptive import LegibilityError
    from cof_plugins.eval.report import build_report
    from cof_plugins.eval.store import RunDirError
    from cof_plugins.methods.cos_eval import is_cos_run, report_cos_runs

    try:
        check_writable(args.output, "-o/--output")
        if any(is_cos_run(d) for d in args.run_dirs):
            return report_cos_runs(args.run_dirs, args.output, args.trajectories)
        md, page = build_report(
            args.run_dirs, args.output, trajectories=args.trajectories,
            legibility=args.legibility,
        )  # fmt: skip
    except (RunDirError, OutputError, LegibilityError) as exc:
        print(f"cof report: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {md} and {page}")
    return 0


def _add_viz(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "viz",
        help="draw one trajectory (eval run or verl rollout dump) to a PNG",
        description="SOURCE is a `cof eval` run directory (pick with --sample), verl's rollout "
        "dump (the recipe's trainer.rollout_data_dir or validation_data_dir: a folder of "
        "STEP.jsonl, pick with --step and --index; needs --data, the parquet the run read, "
        "since verl dumps text only), or a JSONL with messages/images per line (--index).",
    )
    parser.add_argument("source", type=Path)
    parser.add_argument("--sample", help="run dir: sample id (or its key id@resolution)")
    parser.add_argument("--resolution", help="run dir: resolution of a sweep (default: first)")
    parser.add_argument("--index", type=int, default=0, help="rollout dump: 0-based row")
    parser.add_argument("--step", type=int, help="verl dump folder: the step (default: latest)")
    parser.add_argument("--data", type=Path, help="verl dump: the RL parquet the run read")
    parser.add_argument("--data-row", type=int, help="verl dump: the parquet row, if ambiguous")
    parser.add_argument(
        "--tool-config", type=Path, help="verl dump: zoom tool YAML (default: the shipped one)"
    )
    parser.add_argument("--family", default="qwen2_5_vl", choices=sorted(FAMILIES))
    parser.add_argument("-o", "--output", type=Path, default=Path("trajectory.png"))
    parser.set_defaults(func=run_viz)


def run_viz(args: argparse.Namespace) -> int:
    from cof_plugins.core.atomic import check_writable
    from cof_plugins.eval.viz import render

    try:
        check_writable(args.output.parent, "-o/--output")
        drawn = _drawing(args)
    except (OSError, ValueError, IndexError, KeyError) as exc:
        print(f"cof viz: {exc}", file=sys.stderr)
        return 2
    import io

    from cof_plugins.eval.store import write_atomic

    buffer = io.BytesIO()
    render(drawn).save(buffer, format="PNG")
    try:
        write_atomic(args.output, buffer.getvalue())
    except OSError as exc:
        print(f"cof viz: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}")
    return 0


def _drawing(args: argparse.Namespace):
    from cof_plugins.eval import verl_dump
    from cof_plugins.eval.viz import read_rollout, record_drawing, rollout_drawing

    source = args.source
    if source.is_dir() and verl_dump.dump_steps(source):
        source = verl_dump.step_file(source, args.step)
    if not source.is_dir():
        row = read_rollout(source, args.index)
        if not verl_dump.is_verl_dump_row(row):
            return rollout_drawing(row, args.family)
        if args.data is None:
            raise ValueError(
                f"{source} is verl's rollout dump, which holds text only: pass --data with "
                "the RL parquet the run read (data.train_files; val_files for validation)"
            )
        found = verl_dump.find_source_row(row, args.data, args.data_row)
        return verl_dump.dump_drawing(row, found, args.tool_config)
    from cof_plugins.eval.report import loop_config
    from cof_plugins.eval.runner import load_run

    info, records = load_run(args.source)
    if not records:
        raise ValueError(f"{args.source} holds no results yet")
    record = _find(records, args.sample, args.resolution)
    return record_drawing(record, loop_config(info))


def _find(records: list[dict], sample: str | None, resolution: str | None) -> dict:
    if sample is None:
        return records[0]
    matches = [
        r for r in records
        if r["key"] == sample or (str(r["id"]) == sample and (
            resolution is None or str(r.get("resolution") or "native") == resolution))
    ]  # fmt: skip
    if not matches:
        some = ", ".join(r["key"] for r in records[:5])
        raise KeyError(f"no result for sample {sample!r}; keys look like: {some}")
    return matches[0]
