"""The streaming reader agrees with ``json.loads`` on anything, errs where it errs, and
``cof data validate`` holds one row at a time, not the file."""

from __future__ import annotations

import json
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cof_plugins.data import stream
from cof_plugins.data.stream import DataFileError, iter_rows

SCALARS = (
    st.none() | st.booleans() | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
)  # fmt: skip
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of a few bytes, so nearly every value spans a chunk boundary."""
    monkeypatch.setattr(stream, "CHUNK", 5)


@SETTINGS
@given(rows=st.lists(JSON, max_size=6), indent=st.sampled_from([None, 0, 2]),
       ascii_only=st.booleans(), bom=st.booleans())  # fmt: skip
def test_list_files_read_as_json_loads_reads_them(rows, indent, ascii_only, bom, tmp_path_factory,
                                                  small_chunks):  # fmt: skip
    path = tmp_path_factory.mktemp("s") / "rows.json"
    text = json.dumps(rows, indent=indent, ensure_ascii=ascii_only)
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    assert list(iter_rows(path)) == rows


@SETTINGS
@given(text=st.text(alphabet='[]{},:"0123456789.eE+- \ntruefalsn', max_size=40))
def test_broken_lists_fail_where_json_loads_fails(text, tmp_path_factory, small_chunks):
    path = tmp_path_factory.mktemp("s") / "rows.json"
    path.write_text("[" + text)
    try:
        expected = json.loads("[" + text)
    except json.JSONDecodeError as exc:
        with pytest.raises(DataFileError, match=f"line {exc.lineno} "):
            list(iter_rows(path))
    else:
        assert list(iter_rows(path)) == expected


def test_a_long_row_is_read_in_linear_time(tmp_path):
    """One 8 MB string spanning thousands of chunks: the buffer doubles, it is not rescanned."""
    path = tmp_path / "big.json"
    path.write_text(json.dumps([{"text": "x" * 8_000_000}, {"n": 1}]))
    rows = list(iter_rows(path))
    assert len(rows[0]["text"]) == 8_000_000 and rows[1] == {"n": 1}


def _rows_file(path, n: int, frame: str) -> None:
    row = {
        "messages": [
            {"role": "user", "content": "<image>What colour?"},
            {"role": "assistant", "content": "<think>x</think>\n<answer>A</answer>"},
        ],
        "images": [frame],
    }
    with open(path, "w") as f:
        f.write("[\n")
        f.write(",\n".join(json.dumps({**row, "meta": {"id": f"r{i}"}}) for i in range(n)))
        f.write("\n]\n")


def test_validate_memory_does_not_grow_with_the_file(tmp_path, png, monkeypatch):
    """Python's peak while validating 4,000 and 16,000 rows (64 KiB chunks, so both files are
    many chunks long). What grows is the id index, about 32 bytes a row; each row's text is
    about 250 bytes, and holding the parsed rows costs kilobytes a row."""
    from cof_plugins.data.validate import Tally, iter_findings

    monkeypatch.setattr(stream, "CHUNK", 1 << 16)
    frame = png("frame.png", (224, 224))
    peaks = []
    for n in (200, 4_000, 16_000):  # the first run warms the caches (imports, regexes)
        path = tmp_path / f"rows{n}.json"
        _rows_file(path, n, str(frame))
        tracemalloc.start()
        tally = Tally()
        for finding in iter_findings(iter_rows(path), image_dir=tmp_path):
            tally.add(finding)
        current, peak = tracemalloc.get_traced_memory()
        peaks.append(peak - current)  # what the run held at most, beyond what it left
        tracemalloc.stop()
        assert tally.errors == 0
    per_row = (peaks[2] - peaks[1]) / 12_000
    assert per_row < 100, peaks
