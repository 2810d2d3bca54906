"""Where each released dataset comes from and what its snapshot folder must hold.

Kept import-free so ``cof data prepare --help`` can show it without loading the readers
(the full field-by-field formats are in ``data.prepare`` and ``data.benchmarks``). There is
no network in the training environment: download on a connected machine, copy the folder.
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
        "hr_bench_4k.tsv / hr_bench_8k.tsv with base64 'image', question, A-D, answer, category",
    ),
    "mme-realworld": (
        "yifanzhang114/MME-RealWorld (see the dataset card)",
        "MME_RealWorld.json and the unzipped images its 'Image' paths point to",
    ),
}
DATASETS = tuple(SOURCES)


def help_text() -> str:
    lines = [
        "Download on a connected machine, then copy DIR here:",
        "  huggingface-cli download --repo-type dataset <hub name> --local-dir DIR",
        "",
    ]
    for name, (hub, files) in SOURCES.items():
        lines += [f"{name}:", f"  hub:   {hub}", f"  files: {files}", ""]
    lines.append("cof-sft -> OUT/train.json (canonical); others -> OUT/annotations.jsonl.")
    return "\n".join(lines)
