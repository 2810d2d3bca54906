"""Qwen3-VL: 16-px patches (frames in multiples of 32), boxes on a 0-1000 scale."""

from cof_plugins.core.families import chatml
from cof_plugins.core.families.spec import Classes, FamilySpec, LlamaFactory, Tiny, Vision

SPEC = FamilySpec(
    name="qwen3_vl",
    title="Qwen3-VL",
    hf_model_type="qwen3_vl",
    checkpoint="Qwen/Qwen3-VL-8B-Instruct",
    vision=Vision(patch_size=16),
    coords="rel1000",
    tokens=chatml.TOKENS,
    chat=chatml.CHAT,
    classes=Classes(
        config="Qwen3VLConfig",
        processor="Qwen3VLProcessor",
        image_processor="Qwen2VLImageProcessor",
        video_processor="Qwen3VLVideoProcessor",
    ),
    # The CoF template keeps <think>; the stock qwen3_vl reasoning template would strip it.
    llamafactory=LlamaFactory(base_template="qwen3_vl", mm_plugin="qwen3_vl"),
    tiny=Tiny(
        rope={"rope_type": "default", "rope_theta": 5e5, "mrope_interleaved": True},
        text_sizes={"head_dim": "head_dim"},
        vision={
            "num_heads": 2,
            "in_channels": 3,
            "temporal_patch_size": 2,
            "intermediate_size": 64,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "num_position_embeddings": 64,
            "deepstack_visual_indexes": [0],
        },
        vision_sizes={
            "depth": "vision_depth",
            "hidden_size": "vision_hidden",
            "out_hidden_size": "hidden",
        },
    ),
)
