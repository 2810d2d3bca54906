"""``cof data validate``, run side: stream the rows, print and record findings as they come.

The file is read one row at a time (``data.stream``) and each finding is printed (up to
``--show`` per check) and appended to the ``--report`` file (written atomically) as soon as
it is found, so memory does not grow with the file; only the counts for the summary do.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from cof_plugins.core.frame import PixelBudget


def _token_counter(path: str | None):
    if not path:
        return None
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])


def run_validate(args: argparse.Namespace, budget: PixelBudget) -> int:
    """Stream the rows: findings are printed (and written to --report) as they are found."""
    from cof_plugins.core.atomic import OutputError, check_output, open_atomic
    from cof_plugins.data.rows import DataFileError, default_image_dir, iter_rows
    from cof_plugins.data.validate import iter_findings

    try:
        if args.report:
            check_output(args.report, arg="--report", inputs=[args.file], overwrite=args.overwrite)
        rows = _Counted(iter_rows(args.file))
        findings = iter_findings(
            rows,
            image_dir=default_image_dir(args.file, args.image_dir),
            family=args.family,
            budget=budget,
            cutoff_len=args.cutoff_len,
            count_tokens=_token_counter(args.tokenizer),
            decode=args.decode,
            progress=sys.stderr.isatty(),
        )
        with open_atomic(args.report) if args.report else contextlib.nullcontext() as report:
            tally = _print_findings(findings, args.show, report)
    except (DataFileError, OutputError) as exc:
        raise SystemExit(f"cof data validate: {exc}") from None
    print(tally.summary(rows.n))
    failed = tally.errors or (args.strict and sum(tally.counts.values()))
    return 1 if failed else 0


class _Counted:
    """An iterator that counts what passes through it (the rows of a streamed file)."""

    def __init__(self, items) -> None:
        self.items, self.n = items, 0

    def __iter__(self):
        for item in self.items:
            self.n += 1
            yield item


def _print_findings(findings, show: int, report):
    """Print up to ``show`` findings per check, write all to ``report`` (a JSON list)."""
    from cof_plugins.data.validate import Tally

    tally = Tally()
    for f in findings:
        tally.add(f)
        if show < 0 or tally.counts[f.code] <= show:
            print(f)
        if report is not None:
            item = {"row": f.row, "code": f.code, "level": f.level, "message": f.message,
                    "fix": f.fix}  # fmt: skip
            report.write(("[\n" if sum(tally.counts.values()) == 1 else ",\n") + json.dumps(item))
    if report is not None:
        report.write("\n]\n" if tally.counts else "[]\n")
    return tally
