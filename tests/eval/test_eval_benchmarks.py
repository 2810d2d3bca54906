"""Benchmark loaders: every released layout, lazy images, bad rows reported by index."""

from __future__ import annotations

import json

import numpy as np
import pytest
from eval_support import b64_file, hrbench_rows, write_jsonl, write_mme, write_tsv, write_vstar
from PIL import Image

from cof_plugins.core.options import split_options
from cof_plugins.eval.benchmarks import (
    BenchmarkError,
    detect_format,
    load_benchmark,
)


def _same_pixels(a: Image.Image, path) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(Image.open(path).convert("RGB")))


def test_vstar_layout(tmp_path, synth_samples, synth_dir):
    folder = write_vstar(tmp_path / "vstar", synth_samples[:4], synth_dir)
    bench = load_benchmark(folder)
    assert bench.format == "vstar" and len(bench.samples) == 4
    for sample, src in zip(bench.samples, synth_samples, strict=False):
        assert sample.question == src.question
        assert sample.options == tuple(src.options)
        assert sample.answer == src.answer and sample.category == src.category
        assert "Answer with" not in sample.options[-1]
        assert _same_pixels(sample.image.load(), synth_dir / src.image)


def test_vstar_uses_the_one_options_parser_and_checks_the_label(tmp_path, synth_samples, synth_dir):
    """Decided: the label must name an option (the old prepare reader copied it unchecked)."""
    folder = write_vstar(tmp_path / "v", synth_samples[:2], synth_dir)
    path = folder / "test_questions.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0]["text"] = "Which cup? (A) red (B) dark  blue"
    rows[0]["label"] = "dark blue"
    rows[1]["label"] = "E"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(BenchmarkError, match=r"row 1: answer 'E' is neither an option letter"):
        load_benchmark(folder)
    (sample,) = load_benchmark(folder, skip_bad_rows=True).samples
    assert (sample.question, sample.options) == split_options(rows[0]["text"])
    assert sample.options == ("red", "dark blue") and sample.answer == "B"


def test_bad_rows_are_listed_by_index(tmp_path, synth_samples, synth_dir):
    folder = write_vstar(tmp_path / "v", synth_samples[:3], synth_dir)
    path = folder / "test_questions.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[1].pop("label")
    rows.append({"image": "missing.png", "text": "Q?\n(A) a\n(B) b", "label": "A"})
    lines = [json.dumps(r) for r in rows] + ["{not json"]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(folder)
    message = str(err.value)
    assert "3 bad row(s)" in message
    assert "row 1: missing field 'label'" in message
    assert "row 3: image not found" in message and "row 4: not JSON" in message
    assert "--skip-bad-rows" in message
    kept = load_benchmark(folder, skip_bad_rows=True)
    assert [s.index for s in kept.samples] == [0, 2]
    assert [p.split(":")[0] for p in kept.skipped] == ["row 1", "row 3", "row 4"]


def test_hrbench_tsv_cycles_and_image_references(tmp_path, synth_samples, synth_dir):
    rows = hrbench_rows(synth_samples[:3], synth_dir, cycles=2)
    rows[0]["question"] = 'Two "lines"\nin one question'  # quoted field spanning lines
    path = write_tsv(tmp_path / "hr_bench_4k.tsv", rows)
    bench = load_benchmark(path)
    assert bench.format == "hrbench" and len(bench.samples) == 6
    first, second = bench.samples[2], bench.samples[3]  # the two cycles of sample 1
    assert first.group == second.group and first.options != second.options
    correct = synth_samples[1].options["ABCD".index(synth_samples[1].answer)]
    for s in (first, second):
        assert s.options["ABCD".index(s.answer)] == correct
    assert bench.samples[0].question == 'Two "lines"\nin one question'
    assert second.image == first.image  # the repeat points at the first row's pixels
    for i, src in enumerate(synth_samples[:3]):
        assert _same_pixels(bench.samples[2 * i + 1].image.load(), synth_dir / src.image)
    two_options = [s for s in bench.samples if len(s.options) == 2]
    assert all(s.category == "relative_position" for s in two_options)


def test_hrbench_parquet_across_row_groups(tmp_path, synth_samples, synth_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = hrbench_rows(synth_samples[:3], synth_dir, cycles=2)
    images = {s.question: b64_file(synth_dir / s.image) for s in synth_samples[:3]}
    table = pa.Table.from_pylist([dict(r, image=images[r["question"]]) for r in rows])
    pq.write_table(table, tmp_path / "hr.parquet", row_group_size=2)
    bench = load_benchmark(tmp_path / "hr.parquet")
    assert len(bench.samples) == 6 and bench.samples[5].image.row == 5
    assert _same_pixels(bench.samples[5].image.load(), synth_dir / synth_samples[2].image)
    assert _same_pixels(bench.samples[0].image.load(), synth_dir / synth_samples[0].image)


def test_mme_realworld_json(tmp_path, synth_samples, synth_dir):
    path = write_mme(tmp_path / "mme_test.json", synth_samples[:4], synth_dir)
    bench = load_benchmark(path, image_root=synth_dir)
    assert bench.format == "mme-realworld"
    sample, src = bench.samples[0], synth_samples[0]
    assert sample.options == tuple(src.options) and sample.answer == src.answer
    assert sample.category == f"Synth/{src.kind}" and sample.id == "perception/synth/0"


def test_generic_jsonl_open_and_mapping_options(tmp_path, synth_samples, synth_dir):
    extra = [
        {"id": "open-1", "image": synth_samples[0].image, "question": "What is drawn?",
         "answer": "a shape"},
        {"id": "map-1", "image": synth_samples[1].image, "question": "Colour?",
         "options": {"A": "red", "B": "blue"}, "answer": "blue", "category": "c"},
    ]  # fmt: skip
    path = write_jsonl(tmp_path / "own.jsonl", synth_samples[:2], extra)
    bench = load_benchmark(path, image_root=synth_dir)
    assert bench.format == "jsonl" and len(bench.samples) == 4
    open_q = bench.samples[2]
    assert open_q.kind == "open" and open_q.options is None and open_q.answer == "a shape"
    assert bench.samples[3].answer == "B" and bench.samples[3].answer_text == "B) blue"


def test_duplicate_ids_and_unknown_format(tmp_path, synth_samples, synth_dir):
    dup = [{"id": synth_samples[0].id, "image": synth_samples[0].image, "question": "x?",
            "answer": "y"}]  # fmt: skip
    path = write_jsonl(tmp_path / "dup.jsonl", synth_samples[:1], dup)
    with pytest.raises(BenchmarkError, match="share the id"):
        load_benchmark(path, image_root=synth_dir)
    odd = tmp_path / "data.xml"
    odd.write_text("<x/>")
    with pytest.raises(BenchmarkError, match="--format"):
        detect_format(odd)
    with pytest.raises(BenchmarkError, match="does not exist"):
        load_benchmark(tmp_path / "nope.jsonl")


def test_formats_are_a_registry_used_by_cof_eval(tmp_path, synth_samples, synth_dir):
    from cof_plugins.cli import build_parser
    from cof_plugins.core.registry import RegistryError
    from cof_plugins.eval.benchmarks import BENCHMARK_FORMATS

    assert BENCHMARK_FORMATS.names() == ["vstar", "hrbench", "mme-realworld", "jsonl"]
    eval_parser = build_parser()._subparsers._group_actions[0].choices["eval"]
    fmt = next(a for a in eval_parser._actions if a.dest == "format")
    assert fmt.choices == ["auto", *BENCHMARK_FORMATS.names()]
    folder = write_vstar(tmp_path / "v", synth_samples[:1], synth_dir)
    with pytest.raises(BenchmarkError, match=r"did you mean 'vstar'\?.*valid: vstar, hrbench"):
        load_benchmark(folder, "vstr")
    with pytest.raises(RegistryError, match="already registered"):
        BENCHMARK_FORMATS.register("vstar", lambda path, root: iter(()))


def test_a_folder_is_read_by_the_same_rules_as_prepare(tmp_path, synth_samples, synth_dir):
    """``locate``: the release's file name first, else the one file; several are an error."""
    mme = write_mme(tmp_path / "MME_RealWorld.json", synth_samples[:2], synth_dir)
    (tmp_path / "other.json").write_text("[]")
    bench = load_benchmark(tmp_path, "mme-realworld", image_root=synth_dir)
    assert bench.path == str(mme) and len(bench.samples) == 2
    (tmp_path / "MME_RealWorld_CN.json").write_text("[]")
    with pytest.raises(BenchmarkError, match="several mme-realworld files"):
        load_benchmark(tmp_path, "mme-realworld", image_root=synth_dir)
