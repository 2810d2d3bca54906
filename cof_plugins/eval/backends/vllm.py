"""vLLM offline engine: every active trajectory of a turn goes to one ``LLM.generate`` call.

vLLM is imported only when this backend is built (it is optional and GPU-only). Prompts are
rendered with the canonical CoF template, whose vision placeholders are the ones vLLM's
Qwen-VL processors expect; the processor's pixel bounds are the run's budget so frame-sized
images pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cof_plugins.core.frame import PixelBudget
from cof_plugins.eval.backends import BackendUnavailable, Generation, Request, check_placeholders


def import_vllm():
    try:
        import vllm
    except ImportError as exc:
        raise BackendUnavailable(
            f"the vllm backend needs vLLM ({exc}); install it with `pip install "
            "'cof-plugins[vllm]'` on a CUDA machine, or use --backend transformers / openai"
        ) from None
    return vllm


class VLLMBackend:
    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        budget: PixelBudget | None = None,
        max_images: int = 6,
        max_model_len: int = 32768,
        seed: int = 0,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        vllm = import_vllm()
        budget = budget or PixelBudget()
        self.model_name, self._vllm = model, vllm
        self.llm = vllm.LLM(
            model=model,
            limit_mm_per_prompt={"image": max_images},
            max_model_len=max_model_len,
            mm_processor_kwargs={"min_pixels": budget.min_pixels, "max_pixels": budget.max_pixels},
            seed=seed,
            **(engine_kwargs or {}),
        )

    def generate(self, requests: Sequence[Request], max_new_tokens: int) -> list[Generation]:
        from cof_plugins.core.chat_template import render

        prompts = []
        for request in requests:
            check_placeholders(request)
            prompt: dict[str, Any] = {
                "prompt": render(request.messages, add_generation_prompt=True)
            }
            if request.images:
                prompt["multi_modal_data"] = {"image": list(request.images)}
            prompts.append(prompt)
        outputs = self.llm.generate(prompts, self._params(requests, max_new_tokens), use_tqdm=False)
        return [
            Generation(o.outputs[0].text, len(o.outputs[0].token_ids), _prompt_length(o))
            for o in outputs
        ]

    def _params(self, requests: Sequence[Request], max_new_tokens: int) -> Any:
        """One greedy SamplingParams, or one per request carrying its temperature and seed."""
        params = self._vllm.SamplingParams
        if all(r.temperature == 0 for r in requests):
            return params(temperature=0.0, max_tokens=max_new_tokens)
        return [
            params(temperature=r.temperature, max_tokens=max_new_tokens, seed=r.seed)
            for r in requests
        ]

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model_name, "vllm": self._vllm.__version__}

    def close(self) -> None:
        self.llm = None


def _prompt_length(output: Any) -> int | None:
    ids = getattr(output, "prompt_token_ids", None)
    return len(ids) if ids is not None else None
