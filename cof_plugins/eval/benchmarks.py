"""The one reader of benchmark files: each released layout becomes a list of ``Sample``.

``cof eval`` evaluates the samples; ``cof data prepare`` writes them as annotation records
(``data.benchmarks``). Formats are a name -> loader registry, ``BENCHMARK_FORMATS``:

- ``vstar``: V* Bench as released: ``test_questions.jsonl`` (image, text, label, category,
  question_id) with the images beside it; the options are written into ``text``.
- ``hrbench``: HR-Bench 4K/8K, a TSV or parquet file with base64 images (a short ``image``
  cell names the row holding the pixels, as VLMEvalKit writes repeats), option columns A, B,
  ..., ``answer``, ``category``, ``index``; each question appears several times with its
  options cycled, and every row is scored (``group`` ties the cycles together).
- ``mme-realworld``: the MME-RealWorld JSON list (Question_id, Image, Text, Answer choices,
  Ground truth, Category, Subtask).
- ``jsonl``: users' own sets, one object per line: image, question, options (list or
  letter->text mapping, optional), answer, category, id, kind (multiple_choice/open/math).

Until this module was the only reader, ``cof data prepare`` had a second one. Where the two
disagreed, this is what was decided (each pinned by a test in tests/eval/test_eval_benchmarks.py
or tests/data/test_data_prepare.py):

- Strictness: a bad row is an error in both commands, listing every bad row by its 0-based
  index in one message; ``--skip-bad-rows`` uses the rest and reports what it skipped. A
  benchmark with rows silently dropped changes its score's denominator.
- Options: one parser, ``core.options.split_options`` (its docstring has the rules). The
  answer must name an option (``core.options.answer_letter``); it is never copied unchecked.
- Ids: the release's own (V* question_id, HR-Bench index, MME-RealWorld Question_id), else
  the row index, and never prefixed, so an eval run and a prepared file name a question
  alike. Ids must be unique. HR-Bench 4K and 8K reuse indices, so a folder holding several
  HR-Bench files is an error asking for one file; prepare each into its own folder.
- Categories: V* and HR-Bench ``category``; MME-RealWorld "Subtask/Category" (its task
  then its fine-grained category); "all" when a row has none.
- Fields: the release's names; MME-RealWorld's also in the spellings its variants use
  ("image", "question", "Answer Choices", "answer", ...). HR-Bench options are the columns
  A, B, C, ... up to the first empty one, not just A-D.
- Images: a file image must exist when the benchmark is read; embedded images are decoded
  when used (``cof eval``) or written (``cof data prepare``, where an undecodable one is a
  bad row). Rows that point at another row's pixels are resolved by both.
- Files in a folder: the same rules for both commands (``locate``).
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cof_plugins.core.options import answer_letter, split_options, strip_labels
from cof_plugins.core.registry import Registry
from cof_plugins.eval.benchmark_files import (
    BenchmarkError,
    detect_format,
    locate,
)
from cof_plugins.eval.images import ImageRef, is_image_reference, iter_tsv, parquet_groups

_SHOWN_ERRORS = 20

Rows = Iterator[tuple[int, Callable[[], "Sample"]]]
Loader = Callable[[Path, Path], Rows]
BENCHMARK_FORMATS: Registry[Loader] = Registry("benchmark format")


@dataclass(frozen=True)
class Sample:
    """One question. ``answer`` is a letter for multiple choice, else the reference text."""

    id: str
    image: ImageRef
    question: str
    answer: str
    options: tuple[str, ...] | None = None
    category: str = "all"
    kind: str = "multiple_choice"
    group: str | None = None
    index: int = 0

    @property
    def answer_text(self) -> str:
        """The reference as a judge reads it: "B) red" for multiple choice, else the text."""
        if self.options and self.answer in string.ascii_uppercase[: len(self.options)]:
            return f"{self.answer}) {self.options[string.ascii_uppercase.index(self.answer)]}"
        return self.answer


@dataclass(frozen=True)
class Benchmark:
    name: str
    format: str
    path: str
    samples: list[Sample]
    image_root: str = ""
    skipped: list[str] = field(default_factory=list)  # "row N: reason", with --skip-bad-rows


class _RowError(ValueError):
    pass


def load_benchmark(
    path: str | Path,
    fmt: str = "auto",
    *,
    image_root: str | Path | None = None,
    limit: int | None = None,
    skip_bad_rows: bool = False,
) -> Benchmark:
    """Read a benchmark; ``fmt="auto"`` guesses the layout from the path."""
    path = Path(path)
    if not path.exists():
        raise BenchmarkError(f"benchmark path {str(path)!r} does not exist")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt not in BENCHMARK_FORMATS:
        raise BenchmarkError(BENCHMARK_FORMATS.unknown_message(fmt))
    path = locate(path, fmt)
    root = Path(image_root) if image_root else path.parent
    samples, skipped = _collect(BENCHMARK_FORMATS.get(fmt)(path, root), str(path), skip_bad_rows)
    if limit is not None:
        samples = samples[:limit]
    _check_unique(samples, path)
    return Benchmark(path.stem, fmt, str(path), samples, str(root), skipped)


def _collect(rows: Rows, where: str, skip: bool) -> tuple[list[Sample], list[str]]:
    """Build every sample; gather each bad row's index and reason, then raise once."""
    samples, errors = [], []
    for index, build in rows:
        try:
            samples.append(build())
        except (_RowError, KeyError, TypeError, ValueError) as exc:
            reason = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            errors.append(f"row {index}: {reason}")
    if errors and not skip:
        raise BenchmarkError(
            f"{where}: {len(errors)} bad row(s) (0-based):\n  {format_errors(errors)}\n"
            "Fix them, or pass --skip-bad-rows to use the rest."
        )
    return samples, errors


def format_errors(errors: list[str]) -> str:
    shown = "\n  ".join(errors[:_SHOWN_ERRORS])
    more = len(errors) - _SHOWN_ERRORS
    return shown + (f"\n  ... and {more} more" if more > 0 else "")


def _check_unique(samples: list[Sample], path: Path) -> None:
    seen: dict[str, int] = {}
    for sample in samples:
        if sample.id in seen:
            raise BenchmarkError(
                f"{path}: rows {seen[sample.id]} and {sample.index} share the id {sample.id!r}; "
                "ids must be unique so results can be resumed and joined"
            )
        seen[sample.id] = sample.index


# ---------------------------------------------------------------- shared helpers


def _image_file(root: Path, name: Any) -> ImageRef:
    if not isinstance(name, str) or not name:
        raise _RowError(f"image must be a file name, got {name!r}")
    path = Path(name) if Path(name).is_absolute() else root / name
    if not path.is_file():
        raise _RowError(f"image not found: {path}")
    return ImageRef("path", str(path))


def _multiple_choice(options: Iterable[Any]) -> tuple[str, ...]:
    """Option texts without their own labels; a question needs at least two."""
    out = strip_labels(list(options))
    if len(out) < 2 or not all(out):
        raise _RowError(f"a multiple-choice question needs 2 or more non-empty options: {out}")
    return out


def _first(row: Mapping[str, Any], *keys: str) -> Any:
    """The first present, non-empty value among ``keys`` (raises KeyError naming the first)."""
    for key in keys:
        value = row.get(key)
        if value is not None and not (isinstance(value, str) and not value.strip()):
            return value
    raise KeyError(keys[0])


def _group_key(question: str, options: tuple[str, ...] | None) -> str:
    """Same question with cycled options -> same key (option order does not matter)."""
    text = question + "\x00" + "\x00".join(sorted(options or ()))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def _read_jsonl(path: Path) -> Iterable[tuple[int, Any]]:
    with open(path, encoding="utf-8") as handle:
        for index, line in enumerate(handle):
            if not line.strip():
                continue
            try:
                yield index, json.loads(line)
            except json.JSONDecodeError as exc:
                yield index, _RowError(f"not JSON ({exc.msg} at char {exc.pos})")


def _require_mapping(row: Any) -> Mapping[str, Any]:
    if isinstance(row, Exception):
        raise row
    if not isinstance(row, Mapping):
        raise _RowError(f"expected a JSON object, got {type(row).__name__}")
    return row


# ---------------------------------------------------------------- layouts


@BENCHMARK_FORMATS.register("vstar")
def _vstar_rows(path: Path, root: Path) -> Rows:
    for index, row in _read_jsonl(path):
        yield index, lambda index=index, row=row: _vstar_sample(index, row, root)


def _vstar_sample(index: int, row: Any, root: Path) -> Sample:
    row = _require_mapping(row)
    question, options = split_options(str(row["text"]))
    if len(options) < 2 or not question:
        raise _RowError("text needs a question and options labelled (A), (B), ... in order")
    return Sample(
        id=str(row.get("question_id", index)),
        image=_image_file(root, row["image"]),
        question=question,
        answer=answer_letter(row["label"], options),
        options=options,
        category=str(row.get("category") or "all"),
        index=index,
    )


@BENCHMARK_FORMATS.register("hrbench")
def _hrbench_rows(path: Path, root: Path) -> Rows:
    if path.suffix.lower() == ".parquet":
        yield from _hrbench_parquet(path)
        return
    rows = iter_tsv(path)
    _, header = next(rows, (0, []))
    if "image" not in header:
        raise BenchmarkError(f"{path}: no 'image' column (columns: {', '.join(header)})")
    offsets: dict[str, int] = {}
    for index, (offset, fields) in enumerate(rows):
        row: Any = dict(zip(header, fields, strict=False))
        if len(fields) != len(header):
            row = _RowError(f"{len(fields)} fields, the header has {len(header)}")
        else:
            offset = _resolve_tsv_image(row, offset, offsets, str(index))
        ref = ImageRef("tsv", str(path), offset=offset)
        yield index, lambda i=index, r=row, ref=ref: _hrbench_sample(i, r, ref)


def _resolve_tsv_image(row: dict, offset: int, offsets: dict[str, int], index: str) -> int:
    """Offset of the record holding this row's pixels (itself, or the row it points to)."""
    key = str(row.get("index", index))
    image = row["image"]
    if is_image_reference(image) and image.strip() in offsets:
        return offsets[image.strip()]
    offsets[key] = offset
    return offset


def _hrbench_parquet(path: Path) -> Rows:
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    names = [n for n in file.schema_arrow.names if n != "image"]
    if "image" not in file.schema_arrow.names:
        raise BenchmarkError(f"{path}: no 'image' column (columns: {', '.join(names)})")
    parquet_groups(path)
    index = 0
    for batch in file.iter_batches(columns=names):
        for row in batch.to_pylist():
            ref = ImageRef("parquet", str(path), row=index)
            yield index, lambda i=index, r=row, ref=ref: _hrbench_sample(i, r, ref)
            index += 1


def _hrbench_sample(index: int, row: Any, ref: ImageRef) -> Sample:
    row = _require_mapping(row)
    raw = []
    for letter in string.ascii_uppercase:
        value = row.get(letter)
        if value is None or (isinstance(value, float) and value != value) or str(value) == "":
            break
        raw.append(str(value))
    options = _multiple_choice(raw)
    question = str(row["question"]).strip()
    return Sample(
        id=str(row.get("index", index)), image=ref, question=question,
        answer=answer_letter(row["answer"], options), options=options,
        category=str(row.get("category") or "all"), group=_group_key(question, options),
        index=index,
    )  # fmt: skip


@BENCHMARK_FORMATS.register("mme-realworld")
def _mme_rows(path: Path, root: Path) -> Rows:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BenchmarkError(f"{path}: not JSON ({exc})") from None
    if not isinstance(rows, list):
        raise BenchmarkError(
            f"{path}: expected a JSON list of questions, got {type(rows).__name__}"
        )
    for index, row in enumerate(rows):
        yield index, lambda index=index, row=row: _mme_sample(index, row, root)


def _mme_sample(index: int, row: Any, root: Path) -> Sample:
    row = _require_mapping(row)
    choices = _first(row, "Answer choices", "Answer Choices", "options", "choices")
    if isinstance(choices, str) or not isinstance(choices, list | tuple):
        raise _RowError(f"Answer choices must be a list of options, got {choices!r:.60}")
    options = _multiple_choice(choices)
    parts = [str(row[k]) for k in ("Subtask", "Category") if row.get(k)]
    return Sample(
        id=str(row.get("Question_id", row.get("question_id", index))),
        image=_image_file(root, _first(row, "Image", "image")),
        question=str(_first(row, "Text", "question", "Question")).strip(),
        answer=answer_letter(_first(row, "Ground truth", "answer", "Answer"), options),
        options=options,
        category="/".join(parts) or "all",
        index=index,
    )


@BENCHMARK_FORMATS.register("jsonl")
def _jsonl_rows(path: Path, root: Path) -> Rows:
    for index, row in _read_jsonl(path):
        yield index, lambda index=index, row=row: _jsonl_sample(index, row, root)


def _jsonl_sample(index: int, row: Any, root: Path) -> Sample:
    row = _require_mapping(row)
    raw = row.get("options")
    if isinstance(raw, Mapping):
        raw = [raw[k] for k in sorted(raw)]
    options = _multiple_choice(raw) if raw else None
    kind = row.get("kind") or ("multiple_choice" if options else "open")
    if kind not in ("multiple_choice", "open", "math"):
        raise _RowError(f"kind {kind!r} is not one of multiple_choice, open, math")
    if kind == "multiple_choice" and not options:
        raise _RowError("kind multiple_choice needs options")
    question = str(row["question"]).strip()
    if not question:
        raise _RowError("question is empty")
    answer = answer_letter(row["answer"], options) if options else str(row["answer"]).strip()
    return Sample(
        id=str(row.get("id", index)), image=_image_file(root, row["image"]), question=question,
        answer=answer, options=options, category=str(row.get("category") or "all"),
        kind=kind, group=row.get("group"), index=index,
    )  # fmt: skip
