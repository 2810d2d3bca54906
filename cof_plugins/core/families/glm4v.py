"""GLM-4.1V(-Thinking): GLM chat turns, a clip-of-two-frames pixel budget, 0-1000 boxes.

Its own chat format: ``[gMASK]<sop>`` then ``<|system|>``/``<|user|>``/``<|assistant|>``
turns; the model ends its turn by writing the next turn's opener ``<|user|>`` (its
generation config stops at ``<|endoftext|>``, ``<|user|>`` and ``<|observation|>``).
Thinking and answers use the CoF tags natively: ``<think>..</think><answer>..</answer>``.

Boxes: GLM grounds on a 0-1000 scale of the image and marks a box or a final answer with
``<|begin_of_box|>..<|end_of_box|>``. A CoF tool call for GLM is the same JSON envelope as
for every family, ``<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d":
[x1, y1, x2, y2]}}</tool_call>`` with 0-1000 coordinates, written without markers; the
reader drops the markers wherever the model puts them (around the box list, inside the
``bbox_2d`` string, around the answer), so the stock model's habit costs nothing.
"""

from cof_plugins.core.families.spec import (
    ChatFormat,
    Classes,
    FamilySpec,
    LlamaFactory,
    Tiny,
    Tokens,
    Vision,
)

SPEC = FamilySpec(
    name="glm4v",
    title="GLM-4.1V",
    hf_model_type="glm4v",
    checkpoint="zai-org/GLM-4.1V-9B-Thinking",
    # The processor resizes an image as a clip of 2 frames: 2 * h * w counts against its
    # bounds, which therefore carry twice the recipe's frame-area budget.
    vision=Vision(patch_size=14, budget_rule="temporal"),
    coords="rel1000",
    tokens=Tokens(
        # Vocabulary order of GLM-4.1V (<|endoftext|> 151329 ... <|video|> 151344).
        special=(
            "<|endoftext|>",
            "[MASK]",
            "[gMASK]",
            "[sMASK]",
            "<sop>",
            "<eop>",
            "<|system|>",
            "<|user|>",
            "<|assistant|>",
            "<|observation|>",
            "<|begin_of_image|>",
            "<|end_of_image|>",
            "<|begin_of_video|>",
            "<|end_of_video|>",
            "<|image|>",
            "<|video|>",
            "<|begin_of_box|>",
            "<|end_of_box|>",
        ),
        eos="<|endoftext|>",
        pad="<|endoftext|>",
        end_of_turn="<|user|>",
        stop=("<|endoftext|>", "<|user|>", "<|observation|>"),
        image="<|image|>",
        video="<|video|>",
        image_span=("<|begin_of_image|>", "<|end_of_image|>"),
        video_span=("<|begin_of_video|>", "<|end_of_video|>"),
        config_ids={
            "image_token_id": "<|image|>",
            "video_token_id": "<|video|>",
            "image_start_token_id": "<|begin_of_image|>",
            "image_end_token_id": "<|end_of_image|>",
            "video_start_token_id": "<|begin_of_video|>",
            "video_end_token_id": "<|end_of_video|>",
        },
    ),
    chat=ChatFormat(
        jinja="cof_glm4v.jinja",
        prefix="[gMASK]<sop>",
        system="<|system|>\n{content}",
        user="<|user|>\n{content}<|assistant|>\n",
        assistant="{content}",
        opener_ends_turn=True,
        roles_in_decoded_text=False,
        box_markers=("<|begin_of_box|>", "<|end_of_box|>"),
    ),
    classes=Classes(
        config="Glm4vConfig",
        processor="Glm4vProcessor",
        image_processor="Glm4vImageProcessor",
        video_processor="Glm4vVideoProcessor",
        tokenizer="PreTrainedTokenizerFast",
    ),
    llamafactory=LlamaFactory(
        base_template="glm4v",
        mm_plugin="glm4v",
        # GLM fuses gate and up; the projector's down_proj is covered by the LM's name.
        lm_lora_targets="q_proj,k_proj,v_proj,o_proj,gate_up_proj,down_proj",
        projector_lora_targets="merger.proj,merger.gate_proj,merger.up_proj",
    ),
    tiny=Tiny(
        rope={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
        vision={
            "num_heads": 2,
            "in_channels": 3,
            "temporal_patch_size": 2,
            "intermediate_size": 64,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "image_size": 56,
        },
        vision_sizes={
            "depth": "vision_depth",
            "hidden_size": "vision_hidden",
            "out_hidden_size": "hidden",
        },
    ),
    limits=(
        "verl 0.9.1's GLM-4.1V actor code predates transformers 5 (vision output, FLOP "
        "count); cof_plugins.verl.compat wraps both when cof-plugins registers with verl, "
        "on GPUs and CPUs alike",
        "the stock glm4v LLaMA-Factory template drops <think> from earlier turns and stops at "
        "</answer>; CoF data needs cof_glm4v, which keeps every turn",
    ),
)
