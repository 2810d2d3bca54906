"""Qwen2-VL: 14-px patches (frames in multiples of 28), boxes on a 0-1000 scale."""

from cof_plugins.core.families import chatml
from cof_plugins.core.families.spec import Classes, FamilySpec, LlamaFactory, Tiny, Vision

SPEC = FamilySpec(
    name="qwen2_vl",
    title="Qwen2-VL",
    hf_model_type="qwen2_vl",
    checkpoint="Qwen/Qwen2-VL-7B-Instruct",
    vision=Vision(patch_size=14),
    coords="rel1000",
    tokens=chatml.TOKENS,
    chat=chatml.CHAT,
    classes=Classes(
        config="Qwen2VLConfig",
        processor="Qwen2VLProcessor",
        image_processor="Qwen2VLImageProcessor",
        video_processor="Qwen2VLVideoProcessor",
    ),
    llamafactory=LlamaFactory(
        base_template="qwen2_vl",
        mm_plugin="qwen2_vl",
        projector_lora_targets="merger.mlp.0,merger.mlp.2",
    ),
    tiny=Tiny(
        rope={"rope_type": "default", "rope_theta": 1e6},
        vision={
            "num_heads": 2,
            "in_channels": 3,
            "temporal_patch_size": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
        },
        vision_sizes={
            "depth": "vision_depth",
            "embed_dim": "vision_hidden",
            "hidden_size": "hidden",
        },
    ),
)
