"""Qwen3.5: hybrid attention (Gated DeltaNet + full attention), 16-px patches, 0-1000 boxes."""

from cof_plugins.core.families import chatml
from cof_plugins.core.families.spec import Classes, FamilySpec, LlamaFactory, Tiny, Vision

SPEC = FamilySpec(
    name="qwen3_5",
    title="Qwen3.5",
    hf_model_type="qwen3_5",
    checkpoint="Qwen/Qwen3.5-9B",
    # Patch 16 x merge 2: frames in multiples of 32, like Qwen3-VL.
    vision=Vision(patch_size=16),
    coords="rel1000",
    tokens=chatml.TOKENS,
    chat=chatml.CHAT,
    classes=Classes(
        config="Qwen3_5Config",
        processor="Qwen3VLProcessor",
        image_processor="Qwen2VLImageProcessor",
        video_processor="Qwen3VLVideoProcessor",
    ),
    # Stock qwen3_5 is a reasoning template (strips <think>) and wraps tool replies in
    # <tool_response>; the CoF template extends it with neither.
    llamafactory=LlamaFactory(
        base_template="qwen3_5",
        mm_plugin="qwen3_vl",
        # Full attention, Gated DeltaNet and MLP layers.
        lm_lora_targets="q_proj,k_proj,v_proj,o_proj,in_proj_qkv,in_proj_z,in_proj_b,in_proj_a,"
        "out_proj,gate_proj,up_proj,down_proj",
    ),
    tiny=Tiny(
        rope={
            "rope_type": "default",
            "rope_theta": 1e7,
            "mrope_interleaved": True,
            "partial_rotary_factor": 0.5,
        },
        # Every second layer is full attention, so even 2 layers have one of each kind.
        text={
            "full_attention_interval": 2,
            "linear_conv_kernel_dim": 4,
            "linear_key_head_dim": 16,
            "linear_value_head_dim": 16,
            "linear_num_key_heads": 2,
            "linear_num_value_heads": 4,
        },
        text_sizes={"head_dim": "head_dim"},
        vision={
            "num_heads": 2,
            "in_channels": 3,
            "temporal_patch_size": 2,
            "intermediate_size": 64,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "num_position_embeddings": 64,
        },
        vision_sizes={
            "depth": "vision_depth",
            "hidden_size": "vision_hidden",
            "out_hidden_size": "hidden",
        },
    ),
    limits=(
        "Gated DeltaNet layers run pure-torch fallbacks (transformers and verl) unless the "
        "CUDA kernels flash-linear-attention and causal-conv1d are installed: correct but "
        "slow, so CPU runs are smoke tests",
        "verl's Ulysses sequence parallelism for Qwen3.5 needs flash-linear-attention "
        "outright; without it keep ulysses_sequence_parallel_size at 1",
    ),
)
