"""LLaMA-Factory plugin: CoF templates, the `cof sft` runner and LoRA export.

The only package that imports LLaMA-Factory. Importing it has no side effects; ``register()``
adds the CoF templates to LLaMA-Factory's registry and may be called any number of times.
Every process that trains must call it: ``cof sft`` does in-process, and multi-process runs
start in ``cof_plugins.llamafactory.launch``, which calls it on every rank.
"""

from __future__ import annotations

from cof_plugins.core.families import FAMILIES

# Family name (= config.json model_type) -> its CoF template; derived from the family specs.
TEMPLATE_FOR_FAMILY = {spec.name: spec.cof_template for spec in FAMILIES.specs()}


def register() -> list[str]:
    """Register the CoF templates with LLaMA-Factory (idempotent); return their names.

    Raises ``ValueError`` when a template name is already taken by a template that is not
    ours, rather than silently replacing it.
    """
    from cof_plugins.llamafactory.templates import register_templates

    return register_templates()


__all__ = ["TEMPLATE_FOR_FAMILY", "register"]
