"""Qwen2.5-VL: 14-px patches (frames in multiples of 28), boxes in absolute frame pixels."""

from cof_plugins.core.families import chatml
from cof_plugins.core.families.spec import Classes, FamilySpec, LlamaFactory, Tiny, Vision

SPEC = FamilySpec(
    name="qwen2_5_vl",
    title="Qwen2.5-VL",
    hf_model_type="qwen2_5_vl",
    checkpoint="Qwen/Qwen2.5-VL-7B-Instruct",
    vision=Vision(patch_size=14),
    coords="abs",
    tokens=chatml.TOKENS,
    chat=chatml.CHAT,
    classes=Classes(
        config="Qwen2_5_VLConfig",
        processor="Qwen2_5_VLProcessor",
        image_processor="Qwen2VLImageProcessor",
        video_processor="Qwen2VLVideoProcessor",
    ),
    # LLaMA-Factory serves Qwen2.5-VL with its qwen2_vl template.
    llamafactory=LlamaFactory(
        base_template="qwen2_vl",
        mm_plugin="qwen2_vl",
        projector_lora_targets="merger.mlp.0,merger.mlp.2",
    ),
    tiny=Tiny(
        rope={"rope_type": "default", "rope_theta": 1e6},
        # Window attention everywhere but the tiny tower's last (second) block.
        vision={
            "num_heads": 2,
            "in_channels": 3,
            "temporal_patch_size": 2,
            "intermediate_size": 64,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "window_size": 56,
            "fullatt_block_indexes": [1],
        },
        vision_sizes={
            "depth": "vision_depth",
            "hidden_size": "vision_hidden",
            "out_hidden_size": "hidden",
        },
    ),
)
