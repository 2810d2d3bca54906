"""Hugging Face transformers backend (CPU or GPU): one left-padded batch per turn.

Prompts are rendered with the CoF chat template of the model's family (``core.chat_template``,
the family read from the checkpoint's ``model_type``), the template training renders with;
the processor only tokenises and turns images into patches. The processor's pixel bounds are
set to the run's ``PixelBudget`` (through the family's translation), so an image already at
its frame size passes through unchanged and the model sees exactly the frame that boxes
refer to.

Sampling (temperature above 0) does not use ``generate(do_sample=True)``: that draws every
row of a batch from torch's one global generator, so a row's text would depend on what else
shares its batch and a resumed run could not repeat it. ``SeededSampler`` instead draws each
row's token from that row's own ``torch.Generator``, seeded by the request, and hands greedy
search a distribution with all its mass on that token.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from cof_plugins.core.families import family_of_model_type
from cof_plugins.core.frame import PixelBudget
from cof_plugins.eval.backends import BackendUnavailable, Generation, Request, check_placeholders
from cof_plugins.hf_checkpoint import set_image_budget

log = logging.getLogger(__name__)


class TransformersBackend:
    name = "transformers"

    def __init__(
        self,
        model: str,
        *,
        budget: PixelBudget | None = None,
        device: str = "auto",
        dtype: str = "auto",
        seed: int = 0,
    ) -> None:
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise BackendUnavailable(
                f"the transformers backend needs torch and transformers ({exc}); "
                "install cof-plugins[sft]"
            ) from None
        torch.manual_seed(seed)
        self.model_name = model
        self.device = _pick_device(device, torch)
        self.processor = transformers.AutoProcessor.from_pretrained(model)
        set_image_budget(self.processor.image_processor, budget or PixelBudget())
        self.processor.tokenizer.padding_side = "left"
        kwargs = {} if dtype == "auto" else {"dtype": getattr(torch, dtype)}
        self.model = transformers.AutoModelForImageTextToText.from_pretrained(model, **kwargs)
        self.model.to(self.device).eval()
        # None: an unknown model type gets the Qwen template, as before families existed.
        self.family = family_of_model_type(getattr(self.model.config, "model_type", None))
        self._pad = self.processor.tokenizer.pad_token_id
        self._eos = set(_as_list(self.model.generation_config.eos_token_id))
        self._warn_if_template_differs()

    def generate(self, requests: Sequence[Request], max_new_tokens: int) -> list[Generation]:
        import torch

        from cof_plugins.core.chat_template import render

        if not requests:
            return []
        for request in requests:
            check_placeholders(request)
        texts = [
            render(r.messages, add_generation_prompt=True, family=self.family) for r in requests
        ]
        images = [image for r in requests for image in r.images]
        inputs = self.processor(
            text=texts, images=images or None, padding=True, return_tensors="pt"
        ).to(self.device)
        extra = {}
        if any(r.temperature > 0 for r in requests):
            extra["logits_processor"] = [SeededSampler(requests, self.device)]
        with torch.inference_mode():
            out = self.model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=self._pad,
                **extra,
            )
        new = out[:, inputs["input_ids"].shape[1] :].tolist()
        prompts = inputs["attention_mask"].sum(dim=1).tolist()
        return [self._decode(row, int(p)) for row, p in zip(new, prompts, strict=True)]

    def _decode(self, ids: list[int], prompt_tokens: int) -> Generation:
        """Text up to the first end token; that token counts as generated, padding does not."""
        kept = []
        for token in ids:
            kept.append(token)
            if token in self._eos:
                break
        text = self.processor.tokenizer.decode(kept, skip_special_tokens=True)
        return Generation(text, len(kept), prompt_tokens)

    def describe(self) -> dict[str, Any]:
        import torch
        import transformers

        return {
            "backend": self.name,
            "model": self.model_name,
            "model_type": getattr(self.model.config, "model_type", None),
            "family": self.family.name if self.family else None,
            "device": str(self.device),
            "dtype": str(next(self.model.parameters()).dtype),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        }

    def close(self) -> None:
        self.model = None

    def _warn_if_template_differs(self) -> None:
        from cof_plugins.core.chat_template import chat_template, family_chat_template

        ours = family_chat_template(self.family) if self.family else chat_template()
        own = getattr(self.processor, "chat_template", None)
        if own and own != ours:
            log.info(
                "%s ships its own chat template; prompts use the canonical CoF template "
                "(as in training) instead",
                self.model_name,
            )


class SeededSampler:
    """A logits processor that samples each row with its own seeded generator.

    Rows at temperature 0 keep their argmax. The returned scores are 0 for the drawn token
    and -inf elsewhere, so greedy search emits exactly the draw; processors that run before
    this one (the checkpoint's repetition penalty, for instance) still shape the logits.
    """

    def __init__(self, requests: Sequence[Request], device: Any) -> None:
        import torch

        self.temperatures = [float(r.temperature) for r in requests]
        self.generators = []
        for r in requests:
            gen = None
            if r.temperature > 0:
                gen = torch.Generator(device=device)
                gen.manual_seed(int(r.seed or 0))
            self.generators.append(gen)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        chosen = []
        for row, (gen, temp) in enumerate(zip(self.generators, self.temperatures, strict=True)):
            if gen is None:
                chosen.append(scores[row].argmax())
                continue
            probs = torch.softmax(scores[row].float() / temp, dim=-1)
            chosen.append(torch.multinomial(probs, 1, generator=gen)[0])
        out = torch.full_like(scores, float("-inf"))
        out[torch.arange(scores.shape[0]), torch.stack(chosen)] = 0.0
        return out


def _pick_device(device: str, torch: Any) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendUnavailable(f"--device {device} asked for CUDA, but no GPU is visible")
    return device


def _as_list(value: Any) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]
