"""The canonical CoF chat templates (Jinja), shared by RL rollouts, eval and exported models.

One template per chat format: ``cof_qwen.jinja`` for every Qwen family, ``cof_glm4v.jinja``
for GLM-4.1V; a family names its own (``FamilySpec.chat.jinja``). The LLaMA-Factory template
registered in ``cof_plugins.llamafactory`` produces the same tokens for the same
conversation; a test checks the two against each other for every family.
"""

from __future__ import annotations

from functools import lru_cache

from cof_plugins.assets import data_templates_dir
from cof_plugins.core.families import FamilySpec, get_family

TEMPLATE_FILE = "cof_qwen.jinja"


@lru_cache(maxsize=8)
def chat_template(name: str = TEMPLATE_FILE) -> str:
    """Text of a chat template in ``data_templates/chat_templates``."""
    path = data_templates_dir() / "chat_templates" / name
    if not path.is_file():
        raise FileNotFoundError(f"chat template {path} not found; reinstall cof-plugins")
    return path.read_text(encoding="utf-8")


def family_chat_template(family: str | FamilySpec) -> str:
    """Text of the CoF chat template of ``family``."""
    return chat_template(get_family(family).chat.jinja)


def render(
    messages: list[dict],
    *,
    add_generation_prompt: bool = False,
    family: str | FamilySpec | None = None,
    **kwargs,
) -> str:
    """Render ``messages`` with a family's template (default: the Qwen one); no tokenizer."""
    source = family_chat_template(family) if family is not None else chat_template()
    template = _compiled(source)
    return template.render(messages=messages, add_generation_prompt=add_generation_prompt, **kwargs)


@lru_cache(maxsize=8)
def _compiled(source: str):
    """Compile once: the same Jinja settings transformers uses for chat templates."""
    import jinja2

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["tojson"] = _tojson
    return env.from_string(source)


def _tojson(value) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)
