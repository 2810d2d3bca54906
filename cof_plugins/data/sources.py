"""Where each released dataset comes from and what its snapshot folder must hold.

Kept import-free: the notes, and ``dataset_names``, which reads the benchmark format
registry of ``eval.benchmarks`` only when called; the field-by-field formats are in
``data.prepare`` and ``eval.benchmarks``. There is no network in the training environment:
download on a connected machine, copy the folder.
"""

from __future__ import annotations

# name -> (hub dataset, expected files in --from DIR)
SOURCES: dict[str, tuple[str, str]] = {
    "cof-sft": (
        "xintongzhang/CoF-SFT-Data-5.4k",
        "*.json: list of {messages, images}; images/ (or beside the JSON)",
    ),
    "cof-rl": (
        "xintongzhang/CoF-RL-Data",
        "*.parquet | *.jsonl | *.json rows with question, answer, image, data_source; "
        "images/ when images are names",
    ),
    "vstar": (
        "craigwu/vstar_bench",
        "test_questions.jsonl (image, text, label, category) and the image folders beside it",
    ),
    "hrbench": (
        "DreamMr/HR-Bench (see the dataset card)",
        "hr_bench_4k.tsv / hr_bench_8k.tsv (or .parquet) with base64 'image', index, question, "
        "A, B, ..., answer, category; prepare each file into its own --out (ids repeat)",
    ),
    "mme-realworld": (
        "yifanzhang114/MME-RealWorld (see the dataset card)",
        "MME_RealWorld.json and the unzipped images its 'Image' paths point to",
    ),
    "jsonl": (
        "your own benchmark",
        "one JSON object per line: image, question, options (optional), answer, category, id",
    ),
}
TRAINING_SETS = ("cof-sft", "cof-rl")


def dataset_names() -> list[str]:
    """Every name ``cof data prepare`` accepts: the training sets, then the benchmark formats."""
    from cof_plugins.eval.benchmarks import BENCHMARK_FORMATS

    return [*TRAINING_SETS, *BENCHMARK_FORMATS.names()]


def help_text() -> str:
    lines = [
        "Download on a connected machine, then copy DIR here:",
        "  huggingface-cli download --repo-type dataset <hub name> --local-dir DIR",
        "",
    ]
    for name, (hub, files) in SOURCES.items():
        lines += [f"{name}:", f"  hub:   {hub}", f"  files: {files}", ""]
    lines.append("cof-sft -> OUT/train.json (canonical); others -> OUT/annotations.jsonl.")
    lines.append(
        "A benchmark with a bad row is not written (every bad row is listed by its 0-based "
        "index); --skip-bad-rows writes the rest."
    )
    return "\n".join(lines)
