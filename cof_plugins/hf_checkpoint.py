"""Make an exported Hugging Face checkpoint self-describing for every later stage.

After SFT (LLaMA-Factory's export) or RL (verl's model merger), the folder's tokenizer and
processor get the canonical CoF chat template and the image processor gets the pixel budget,
so verl rollouts, vLLM and ``cof eval`` that load the folder with transformers' Auto classes
see the same prompt text and the same frames as training did.
"""

from __future__ import annotations

from pathlib import Path

from cof_plugins.core.families import family_of_image_processor, family_of_model_dir
from cof_plugins.core.frame import PixelBudget


def set_image_budget(image_processor, budget: PixelBudget) -> None:
    """Bound the image processor's frames by ``budget`` (both spellings processors use).

    The bounds are the family's translation of the frame-area budget (GLM-4.1V's processor
    counts an image twice, as a two-frame clip), so the processor's frame is ``frame_size``.
    """
    spec = family_of_image_processor(image_processor)
    low, high = (
        spec.processor_bounds(budget.min_pixels, budget.max_pixels)
        if spec is not None
        else (budget.min_pixels, budget.max_pixels)
    )
    image_processor.size = {"shortest_edge": low, "longest_edge": high}
    for name, value in (("min_pixels", low), ("max_pixels", high)):
        if hasattr(image_processor, name):
            setattr(image_processor, name, value)


def stamp_cof(model_dir: str | Path, budget: PixelBudget) -> None:
    """Write the CoF chat template and ``budget`` into the processor saved in ``model_dir``."""
    from transformers import AutoProcessor

    from cof_plugins.core.chat_template import family_chat_template

    template = family_chat_template(family_of_model_dir(model_dir) or "qwen2_5_vl")
    processor = AutoProcessor.from_pretrained(model_dir)
    processor.chat_template = template
    processor.tokenizer.chat_template = template
    set_image_budget(processor.image_processor, budget)
    processor.save_pretrained(model_dir)
