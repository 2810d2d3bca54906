"""Which modules each SFT recipe trains, read off the model LLaMA-Factory itself builds.

Every recipe's header states its projector treatment ("# Projector: LoRA ...", "trained
fully", "frozen"); here LLaMA-Factory's own loader (``load_model`` with the recipe's method
keys) builds the tiny model of the recipe's family, and the LoRA layers and trainable
parameters are compared with that statement, module group by module group.
"""

from __future__ import annotations

import pytest

from .conftest import RECIPES

ALL = sorted(p.name for p in RECIPES.glob("*.yaml"))
TREATMENTS = {"LoRA": "lora", "trained fully": "full", "frozen": "frozen"}


def treatment(name: str) -> str:
    for line in (RECIPES / name).read_text().splitlines():
        if line.startswith("# Projector: "):
            text = line.removeprefix("# Projector: ")
            return next(v for k, v in TREATMENTS.items() if text.startswith(k))
    raise AssertionError(f"{name}: the header must say '# Projector: LoRA|trained fully|frozen'")


def family(name: str) -> str:
    """The recipe's family, from its template (how an SFT recipe declares it)."""
    import yaml

    from cof_plugins.llamafactory.templates import family_of_template

    return family_of_template(yaml.safe_load((RECIPES / name).read_text())["template"])


def build(name: str, model_dir, tmp_path, *overrides: str):
    """The trainable model LLaMA-Factory's own loader makes from the recipe."""
    from llamafactory.model import load_model, load_tokenizer

    from cof_plugins.llamafactory.recipes import validate_recipe

    args = [f"model_name_or_path={model_dir}", f"output_dir={tmp_path}", *overrides]
    (model_args, _, _, finetuning, _), _ = validate_recipe(RECIPES / name, args)
    tokenizer = load_tokenizer(model_args)["tokenizer"]
    return load_model(tokenizer, model_args, finetuning, is_trainable=True)


def group(name: str) -> str:
    name = name.removeprefix("base_model.model.")
    if ".visual.merger." in name:
        return "merger"
    return "vision" if ".visual." in name else "lm"


def survey(model) -> dict[str, dict[str, set[str]]]:
    """Per group: its linear layers, those carrying LoRA, its trainable and frozen weights."""
    import torch
    from peft.tuners.lora import LoraLayer

    out = {g: {"linear": set(), "lora": set(), "trainable": set(), "frozen": set()}
           for g in ("merger", "vision", "lm")}  # fmt: skip
    for name, module in model.named_modules():
        clean = name.removeprefix("base_model.model.")
        if isinstance(module, LoraLayer):
            out[group(name)]["lora"].add(clean)
        if isinstance(module, torch.nn.Linear) and ".lora_" not in name:
            out[group(name)]["linear"].add(clean.removesuffix(".base_layer"))
    for name, param in model.named_parameters():
        if ".lora_" not in name:
            key = "trainable" if param.requires_grad else "frozen"
            out[group(name)][key].add(name.removeprefix("base_model.model."))
    return out


def lora_params_only(model) -> bool:
    return all(".lora_" in n for n, p in model.named_parameters() if p.requires_grad)


@pytest.mark.parametrize("name", ALL)
def test_each_recipe_trains_the_projector_as_its_header_says(name, tiny_model_factory, tmp_path):
    model = build(name, tiny_model_factory(family(name)), tmp_path)
    got = survey(model)
    merger, vision, lm = got["merger"], got["vision"], got["lm"]
    assert merger["linear"] and vision["linear"] and lm["linear"]
    assert not vision["lora"]
    if "\n# Vision tower: trained" in (RECIPES / name).read_text():  # tiny_cpu_full's random one
        assert vision["trainable"] and not vision["frozen"]
    else:
        assert not vision["trainable"]  # the vision tower stays frozen, as in the paper
    kind = treatment(name)
    lm_head = {n for n in lm["linear"] if n.endswith("lm_head")}
    if kind == "frozen" and lm["lora"]:  # LoRA on the language model only (SIFThinker's)
        assert lm["lora"] == lm["linear"] - lm_head
        assert not merger["lora"] and not merger["trainable"]
        assert lora_params_only(model)
    elif kind == "lora":
        assert merger["lora"] == merger["linear"]  # adapters on every projector linear layer
        assert not merger["trainable"]  # its norm and the base weights stay frozen
        assert lm["lora"] == lm["linear"] - lm_head  # what `lora_target: all` covers
        assert lora_params_only(model)
    else:
        assert not (merger["lora"] or lm["lora"])
        assert lm["trainable"] and not lm["frozen"]
        if kind == "full":
            assert merger["trainable"] and not merger["frozen"]
        else:
            assert merger["frozen"] and not merger["trainable"]


def test_paper_recipe_puts_lora_on_the_mergers_two_linear_layers(tiny_model, tmp_path):
    got = survey(build("paper_qwen2_5_vl_7b_lora.yaml", tiny_model, tmp_path))
    assert got["merger"]["lora"] == {"model.visual.merger.mlp.0", "model.visual.merger.mlp.2"}
    assert "model.visual.merger.ln_q.weight" in got["merger"]["frozen"]


def test_llamafactory_all_alone_leaves_the_projector_untrained(tiny_model, tmp_path):
    """Why the paper recipe lists its targets: 0.9.5's `all` skips the projector's keys."""
    model = build("paper_qwen2_5_vl_7b_lora.yaml", tiny_model, tmp_path, "lora_target=all")
    got = survey(model)
    assert not got["merger"]["lora"] and not got["merger"]["trainable"]
    assert got["lm"]["lora"]  # the language model still gets its adapters
