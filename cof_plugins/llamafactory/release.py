"""Recognise a Chain-of-Focus *release* SFT config and map it onto this package's recipes.

The release trains with its own LLaMA-Factory fork from ``configs/sft_lora-7b.yaml`` plus a
``dataset_info.json`` it asks users to copy next to the images. Run unchanged through
``cof sft``, such a file would train something else than the user expects:

- ``template: qwen2_vl`` is LLaMA-Factory's stock template, not a CoF one: it pre-scales
  images with its own rounding (so the frame, and every box in the data, differs from what
  RL and evaluation compute) and never masks image tokens inside trained turns (the fork did);
- ``deepspeed:`` names a JSON inside the fork's checkout, which is not here;
- ``lora_target: all`` with ``freeze_multi_modal_projector: false``: the fork put LoRA
  adapters on the projector's linear layers too; stock LLaMA-Factory 0.9.5's ``all`` skips the
  projector, so the targets are spelt out (the language model's linear layers plus the
  projector's, as ``recipes/sft/paper_qwen2_5_vl_7b_lora.yaml`` lists them);
- older configs spell the pixel budget ``max_pixels``/``min_pixels``, which 0.9.5 rejects;
- ``dataset:``/``dataset_dir:`` point at the release's own entry and image folder.

``release_changes`` says, key by key, what each maps to here; ``cof sft`` refuses such a file
with that list, and ``cof sft migrate`` writes the equivalent recipe (``migrated_recipe``).
Nothing here imports LLaMA-Factory.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cof_plugins.core.families import FAMILIES
from cof_plugins.llamafactory import TEMPLATE_FOR_FAMILY

# LLaMA-Factory's own templates for the Qwen-VL families (what the release uses).
STOCK_TEMPLATES = {"qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_nothink"}
OLD_PIXEL_KEYS = {"max_pixels": "image_max_pixels", "min_pixels": "image_min_pixels"}
PLACEHOLDER = re.compile(r"/your/path|/path/to/", re.IGNORECASE)
SHIPPED_DATASET = "cof_sft"
DEFAULT_DATA = "cof:data/cof_sft"
MASKVIS = "_maskvis"


@dataclass(frozen=True)
class Change:
    """One key of the release config: its value there, what it becomes here, and why."""

    key: str
    before: Any
    after: Any  # None: the key is dropped
    why: str
    blocking: bool = True  # would `cof sft` train something else than intended?

    def line(self) -> str:
        after = "(dropped)" if self.after is None else _show(self.after)
        return f"{self.key}: {_show(self.before)} -> {after}: {self.why}"


def _show(value: Any) -> str:
    """A value as the YAML file spells it (``false``, not Python's ``False``)."""
    return json.dumps(value) if isinstance(value, bool) else str(value)


def family_of(config: Mapping[str, Any]) -> tuple[str, bool]:
    """(model family, whether it was read rather than assumed) from the model path or name."""
    name = str(config.get("model_name_or_path") or "")
    config_json = Path(name).expanduser() / "config.json"
    if config_json.is_file():
        try:
            model_type = json.loads(config_json.read_text()).get("model_type", "")
        except ValueError:
            model_type = ""
        if model_type in TEMPLATE_FOR_FAMILY:
            return model_type, True
    # A family's title in the name: "Qwen2.5-VL" in ".../qwen2_5_vl_7b", "GLM-4.1V" in ...
    for spec in FAMILIES.specs():
        if _squash(spec.title) in _squash(name):
            return spec.name, True
    return "qwen2_5_vl", False  # the release's model (CoF-sft-model-7b is a Qwen2.5-VL-7B)


def _squash(text: str) -> str:
    return text.lower().replace("_", "").replace("-", "").replace(".", "")


def _uses_cof_data(config: Mapping[str, Any]) -> bool:
    return "cof" in str(config.get("dataset") or "").lower()


def _ds_name(path: str) -> str:
    """``cof:zero2|zero3|zero3_offload`` for a DeepSpeed file named like the fork's examples."""
    name = Path(path).name.lower()
    stage = "zero2" if re.search(r"z(ero)?_?2", name) else "zero3"
    return f"cof:{stage}_offload" if "offload" in name and stage == "zero3" else f"cof:{stage}"


def release_changes(
    config: Mapping[str, Any], dataset_info: Mapping[str, Any] | None = None, base: Path = Path()
) -> list[Change]:
    """Every key of ``config`` that means something else here, with what it maps to.

    ``dataset_info`` is the release's ``dataset_info.json`` (its relative ``file_name``s
    resolve against ``base``). Keys that carry over unchanged are not listed.
    """
    changes: list[Change] = []
    family, known = family_of(config)
    data_file = _entry_file(str(config.get("dataset") or ""), dataset_info, base)
    template = config.get("template")
    if template in STOCK_TEMPLATES and (_uses_cof_data(config) or dataset_info is not None):
        ours = TEMPLATE_FOR_FAMILY[family]
        why = (
            "LLaMA-Factory's stock template pre-scales images its own way (boxes then refer to "
            "a different frame than RL and eval use); the CoF template uses the shared frame"
        )
        if _in_turn(data_file):
            ours += MASKVIS
            why += "; your crops sit inside assistant turns, so image tokens there are masked"
        if not known:
            why += f"; family assumed {family}: check model_name_or_path"
        changes.append(Change("template", template, ours, why))
    changes += _deepspeed_change(config)
    for old, new in OLD_PIXEL_KEYS.items():
        if old in config:
            why = f"LLaMA-Factory 0.9.5 calls it {new} (and rejects {old})"
            if new in config:
                why = f"{new} is also set ({config[new]}) and wins; {old} is dropped"
            changes.append(Change(old, config[old], None if new in config else f"{new}", why))
    changes += _projector_change(config, family)
    changes += _data_changes(config, dataset_info is not None, data_file, family)
    return changes


# LoRA targets that reproduce the fork's ``lora_target: all`` on 0.9.5: every linear layer of
# the language model plus the projector's (0.9.5's ``all`` skips the projector's keys).


def _projector_change(config: Mapping[str, Any], family: str) -> list[Change]:
    lora = config.get("finetuning_type") == "lora" and not config.get("additional_target")
    fork_all = str(config.get("lora_target", "all")).strip() == "all"
    if not (lora and fork_all and config.get("freeze_multi_modal_projector") is False):
        return []
    targets = FAMILIES[family].llamafactory.lora_targets
    return [
        Change(
            "lora_target",
            "all",
            targets,
            "the release's fork put LoRA adapters on the projector's linear layers too; "
            "LLaMA-Factory 0.9.5's `all` skips the projector, so the targets are listed (as "
            "recipes/sft/paper_qwen2_5_vl_7b_lora.yaml does); freeze_multi_modal_projector: "
            "false stays, else 0.9.5 drops the projector targets",
        )
    ]


def _deepspeed_change(config: Mapping[str, Any]) -> list[Change]:
    value = config.get("deepspeed")
    if not isinstance(value, str) or value.startswith("cof:") or Path(value).expanduser().is_file():
        return []
    return [
        Change(
            "deepspeed",
            value,
            _ds_name(value),
            "that file belongs to the release's LLaMA-Factory checkout and is not here; "
            "the shipped config of the same ZeRO stage replaces it",
        )
    ]


def _data_changes(
    config: Mapping[str, Any], has_info: bool, data_file: Path | None, family: str
) -> list[Change]:
    if not _uses_cof_data(config) and not has_info:
        return []
    name = str(config.get("dataset") or "")
    images = config.get("dataset_dir")
    changes = []
    if name != SHIPPED_DATASET:
        changes.append(
            Change(
                "dataset",
                name,
                SHIPPED_DATASET,
                "the shipped dataset_info entry (sharegpt messages/images, every role tag) "
                "reading your data through dataset_dir: cof:PATH",
                blocking=False,
            )
        )
    if data_file is not None and data_file.is_file():
        target, why = f"cof:{data_file}", "the data file your dataset_info.json names"
    else:
        target = DEFAULT_DATA
        why = (
            "the data file was not found here; pass dataset_dir=cof:FILE_OR_FOLDER, "
            "ideally the output of `cof data prepare cof-sft` (checked and normalised)"
        )
    changes.append(Change("dataset_dir", images, target, why, blocking=False))
    if images and not PLACEHOLDER.search(str(images)) and Path(str(images)).expanduser().is_dir():
        changes.append(
            Change(
                "media_dir",
                None,
                str(images),
                "image paths resolve in the release's image folder",
                False,
            )
        )
    if PLACEHOLDER.search(str(config.get("output_dir") or "")):
        out = f"saves/{family}/lora/cof_sft"
        changes.append(Change("output_dir", config["output_dir"], out, "a placeholder path", False))
    return changes


def _entry_file(name: str, info: Mapping[str, Any] | None, base: Path) -> Path | None:
    """The data file of entry ``name`` in a dataset_info mapping (None without one)."""
    if info is None:
        return None
    if name not in info:
        raise ValueError(
            f"dataset {name!r} is not an entry of the dataset_info.json given; "
            f"entries: {', '.join(sorted(info)) or 'none'}"
        )
    entry = info[name]
    if entry.get("formatting", "alpaca") != "sharegpt":
        raise ValueError(f"dataset_info entry {name!r} is not sharegpt; CoF data is")
    path = Path(str(entry.get("file_name", ""))).expanduser()
    return path if path.is_absolute() else base / path


def _in_turn(data_file: Path | None) -> bool:
    """Whether any row of the data holds a crop inside an assistant turn (``data.layout``)."""
    if data_file is None or not data_file.is_file():
        return False
    from cof_plugins.data.layout import detect_layout

    try:
        rows = json.loads(data_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{data_file}: not a JSON list of rows ({exc})") from None
    return any(
        isinstance(r, Mapping) and detect_layout(r.get("messages") or []) == "in-turn" for r in rows
    )


def refusal(recipe: str | Path, changes: list[Change]) -> str:
    """What ``cof sft`` says instead of training a release config as it is."""
    lines = "\n".join(f"  - {c.line()}" for c in changes)
    return (
        f"{recipe} looks like a config of the Chain-of-Focus release; run as it is, it would "
        f"not train what you expect:\n{lines}\nWrite the equivalent recipe with:\n"
        f"  cof sft migrate {recipe} --dataset-info DIR/dataset_info.json --out recipe.yaml"
    )


def migrated_recipe(config: Mapping[str, Any], changes: list[Change], source: str) -> str:
    """The recipe text: the release's keys in their order, each change applied and commented."""
    by_key = {c.key: c for c in changes}
    body = []
    for key, value in config.items():
        change = by_key.get(key)
        if change is None:
            body.append(_yaml_line(key, value))
        elif change.after is not None:
            new_key = OLD_PIXEL_KEYS.get(key, key)
            value = value if key in OLD_PIXEL_KEYS else change.after
            body.append(_yaml_line(new_key, value, f"was: {change.before}"))
        if key == "dataset_dir" and "media_dir" in by_key:
            body.append(_yaml_line("media_dir", by_key["media_dir"].after))
    header = [
        f"# Migrated by `cof sft migrate` from {source}, a Chain-of-Focus release config.",
        "# Launch (one node, 8 GPUs):",
        "#   cof sft THIS_FILE --nproc-per-node 8 [dataset_dir=cof:/path/to/data]",
        "# Release key -> this recipe:",
    ]
    for change in changes:
        header += ["#   " + part for part in textwrap.wrap(change.line(), 94)]
    return "\n".join([*header, "", *body]) + "\n"


def _yaml_line(key: str, value: Any, comment: str = "") -> str:
    import yaml

    text = yaml.safe_dump({key: value}, default_flow_style=True, width=10_000).strip()
    text = text[1:-1] if text.startswith("{") else text  # {key: value} -> key: value
    return f"{text}  # {comment}" if comment else text
