"""What LLaMA-Factory will train on: its own tokenized rows, without loading the model.

Runs LLaMA-Factory's real data path (argument parser, tokenizer loading, template fix-up,
``get_dataset``) on a resolved config, so ids and labels are exactly those of training.
Used by ``cof sft --preview N`` and by the tests that check templates and label masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IGNORE = -100


@dataclass(frozen=True)
class EncodedRow:
    """One training row as LLaMA-Factory builds it."""

    input_ids: list[int]
    labels: list[int]

    def trained_spans(self) -> list[list[int]]:
        """Maximal runs of label ids that carry loss."""
        spans: list[list[int]] = []
        run: list[int] = []
        for label in [*self.labels, IGNORE]:
            if label != IGNORE:
                run.append(label)
            elif run:
                spans.append(run)
                run = []
        return spans


def encode_rows(config: dict[str, Any]) -> tuple[list[EncodedRow], Any]:
    """(rows, tokenizer) of the training set a resolved config describes."""
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    from cof_plugins.llamafactory import register

    register()
    try:
        model_args, data_args, training_args, _, _ = get_train_args(dict(config))
    except ValueError as exc:
        if "bf16/gpu" not in str(exc):
            raise
        raise ValueError(
            "--preview parses the recipe with LLaMA-Factory, which refuses bf16: true on a "
            "machine without a CUDA GPU. Tokenization does not depend on precision: preview "
            "here with `bf16=false use_cpu=true` added to the command"
        ) from None
    tokenizer_module = load_tokenizer(model_args)
    template = get_template_and_fix_tokenizer(tokenizer_module["tokenizer"], data_args)
    dataset = get_dataset(
        template, model_args, data_args, training_args, stage="sft", **tokenizer_module
    )["train_dataset"]
    rows = [EncodedRow(list(r["input_ids"]), list(r["labels"])) for r in dataset]
    return rows, tokenizer_module["tokenizer"]


def describe(row: EncodedRow, tokenizer) -> str:
    """The row's text with trained spans in [[...]], vision pads collapsed to a count."""
    pieces, trained, run = [], False, []

    def flush() -> None:
        if run:
            text = _collapse_pads(tokenizer.decode(run, skip_special_tokens=False))
            pieces.append(f"[[{text}]]" if trained else text)
            run.clear()

    for token, label in zip(row.input_ids, row.labels, strict=True):
        if (label != IGNORE) != trained:
            flush()
            trained = label != IGNORE
        run.append(token)
    flush()
    return "".join(pieces)


def _collapse_pads(text: str) -> str:
    """Runs of any family's image placeholder (``<|image_pad|>``, ``<|image|>``) as ``TOKxN``."""
    import re

    from cof_plugins.core.families import FAMILIES

    for token in dict.fromkeys(spec.tokens.image for spec in FAMILIES.specs()):
        pattern = f"(?:{re.escape(token)})+"
        text = re.sub(pattern, lambda m, t=token: f"{t}x{m.group(0).count(t)}", text)
    return text
