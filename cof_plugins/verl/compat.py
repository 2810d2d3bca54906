"""Keep verl 0.9.1's GLM-4.1V actor working with transformers 5 (GPU and CPU alike).

Two places in verl 0.9.1 predate transformers 5's GLM-4.1V classes:

- ``verl.models.transformers.glm4v._get_input_embeds`` (installed on the actor model by
  verl's own ``apply_monkey_patch``) reads ``model.visual(pixels, grid_thw=...)`` as a tensor
  of merged image features. Since transformers 5 the vision tower returns a
  ``BaseModelOutputWithPooling`` whose ``pooler_output`` holds them (transformers' own
  ``get_image_features`` reads it there): every log-prob step fails with
  ``'BaseModelOutputWithPooling' object has no attribute 'shape'``. The wrapper makes the
  tower hand back ``pooler_output`` for the duration of that one call.
- ``verl.utils.flops_counter`` estimates GLM-4.1V's FLOPs from ``config.hidden_size`` and
  friends, which ``Glm4vConfig`` keeps only in ``text_config`` now: every update step fails
  with ``'Glm4vConfig' object has no attribute 'hidden_size'``. The wrapper hands the
  estimator the text config (the language model is what it counts).

Nothing of verl is copied or edited, and nothing is imported until verl itself imports
those modules (a post-import hook), so processes that never touch them pay nothing.
``install()`` is idempotent; ``cof_plugins.verl.register()`` calls it.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import sys
import threading
from typing import Any

GLM_MODULE = "verl.models.transformers.glm4v"
FLOPS_MODULE = "verl.utils.flops_counter"
_MARK = "_cof_compat"
_lock = threading.Lock()


def install() -> None:
    """Patch verl's modules now where they are loaded, else when they get imported."""
    with _lock:
        waiting = False
        for name, fix in PATCHES.items():
            module = sys.modules.get(name)
            if module is not None:
                fix(module)
            else:
                waiting = True
        if waiting and not any(isinstance(f, _Hook) for f in sys.meta_path):
            sys.meta_path.insert(0, _Hook())


def patch_flops(module: Any) -> bool:
    """Make ``ESTIMATE_FUNC["glm4v"]`` read the text config (idempotent)."""
    table = getattr(module, "ESTIMATE_FUNC", None)
    estimate = table.get("glm4v") if isinstance(table, dict) else None
    if estimate is None:
        return False
    if not getattr(estimate, _MARK, False):

        @functools.wraps(estimate)
        def text_config_flops(config, *args, **kwargs):
            if not hasattr(config, "hidden_size") and hasattr(config, "text_config"):
                config = config.text_config
            return estimate(config, *args, **kwargs)

        setattr(text_config_flops, _MARK, True)
        table["glm4v"] = text_config_flops
    return True


def patch(module: Any) -> bool:
    """Wrap ``module._get_input_embeds`` (idempotent); False when it has no such function."""
    original = getattr(module, "_get_input_embeds", None)
    if original is None:
        return False
    if not getattr(original, _MARK, False):
        wrapped = _tensor_visual(original)
        setattr(wrapped, _MARK, True)
        module._get_input_embeds = wrapped
    return True


def _tensor_visual(original):
    @functools.wraps(original)
    def wrapped(model, *args, **kwargs):
        visual = model.visual
        own = visual.__dict__.get("forward")
        forward = visual.forward

        def features(*a, **k):
            out = forward(*a, **k)
            return getattr(out, "pooler_output", out)

        visual.forward = features
        try:
            return original(model, *args, **kwargs)
        finally:
            if own is None:
                del visual.forward
            else:
                visual.forward = own

    return wrapped


PATCHES = {GLM_MODULE: patch, FLOPS_MODULE: patch_flops}


class _Hook(importlib.abc.MetaPathFinder):
    """Finds nothing itself: lets the real finder load a patched module, then patches it."""

    def find_spec(self, name, path, target=None):
        if name not in PATCHES:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            spec = getattr(finder, "find_spec", lambda *a: None)(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader, PATCHES[name])
                return spec
        return None


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader, fix) -> None:
        self.loader = loader
        self.fix = fix

    def create_module(self, spec: importlib.machinery.ModuleSpec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        self.fix(module)
