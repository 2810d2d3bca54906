"""A transformers-backed rollout for verl 0.9.1's agent loop, registered as rollout ``hf``.

verl's agent loop talks to rollout *servers* (Ray actors answering ``generate(...)``) that a
``RolloutReplica`` launches; the actor worker holds a ``BaseRollout`` adapter that pushes new
weights to its server after each update (``checkpoint_engine.backend: naive``). vLLM and
SGLang need a GPU, so this module supplies the same three pieces over ``model.generate``:

- ``HFRolloutServer``: holds a transformers copy of the policy, answers ``generate`` with a
  ``TokenOutput`` (token ids, optional log-probs), swaps in weights from the actor;
- ``HFReplica`` (registered with ``RolloutReplicaRegistry``): starts one named server per
  replica next to its actor worker;
- ``HFServerAdapter`` (the ``BaseRollout`` in the actor worker): gathers the actor's full
  tensors and hands them to the server through Ray.

It is slow (one request at a time, no KV-cache reuse) and meant for CPU tests and tiny
models; nothing here touches CUDA. ``rollout.calculate_log_probs`` is honoured.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import ray
import torch
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica, TokenOutput

from cof_plugins.core.families import FAMILIES, family_of_model_type, get_family
from cof_plugins.verl.cpu.scripted import ScriptedTurns

log = logging.getLogger(__name__)

SERVER_PREFIX = "cof_hf_rollout_server_"


def server_name(replica_rank: int) -> str:
    """Ray actor name of a replica's server: the adapter finds its server by this name."""
    return f"{SERVER_PREFIX}{replica_rank}"


def _field(config: Any, name: str, default: Any = None) -> Any:
    return (
        getattr(config, name, None) if not isinstance(config, dict) else config.get(name, default)
    )


def max_new_tokens(config: Any, prompt_len: int, params: dict) -> int:
    """The answer budget verl's vLLM server would grant, so tensors align the same way."""
    budget = params.pop("max_tokens", params.pop("max_new_tokens", None))
    if budget is None:
        response, prompt = _field(config, "response_length"), _field(config, "prompt_length")
        budget = min(response, prompt + response - prompt_len)
    room = (_field(config, "max_model_len") or 1 << 30) - prompt_len
    return max(1, min(int(budget), room))


def generation_kwargs(params: dict, budget: int, eos: Any, pad: int | None) -> dict:
    """verl sampling params (vLLM names) as ``model.generate`` keywords."""
    temperature = float(params.get("temperature", 1.0))
    kwargs: dict[str, Any] = {
        "max_new_tokens": budget,
        "do_sample": temperature > 0,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "repetition_penalty": float(params.get("repetition_penalty", 1.0)),
    }
    if temperature > 0:
        top_k = int(params.get("top_k", -1))
        kwargs.update(temperature=temperature, top_p=float(params.get("top_p", 1.0)))
        kwargs["top_k"] = top_k if top_k > 0 else None
    return kwargs


# Vision placeholder and span tokens of every family (core.families), as config attributes.
PLACEHOLDER_KEYS = tuple(
    dict.fromkeys(key for spec in FAMILIES.specs() for key in spec.tokens.config_ids)
)


def placeholder_token_ids(config: Any) -> list[int]:
    """Vision placeholder tokens a policy must never emit.

    The processor alone expands them, one run per image; a sampled ``<|image_pad|>`` in a
    response makes M-RoPE look for an image that does not exist (``get_rope_index`` raises
    StopIteration in the agent loop). An untrained tiny model samples them readily.
    """
    ids = [getattr(config, key, None) for key in PLACEHOLDER_KEYS]
    return sorted({i for i in ids if isinstance(i, int)})


class HFRolloutServer:
    """One transformers policy answering the agent loop's token-in/token-out requests."""

    def __init__(self, config: Any, model_config: Any, replica_rank: int = 0) -> None:
        self.config = config
        self.model_config = model_config
        self.replica_rank = replica_rank
        self.global_steps: int | None = None
        self.weight_versions = 0
        self._lock = asyncio.Lock()
        self.model, self.processor = self._load()
        self.placeholder_ids = placeholder_token_ids(self.model.config)
        spec = family_of_model_type(self.model.config.model_type) or get_family("qwen2_5_vl")
        tok = self.processor.tokenizer
        self.script = ScriptedTurns.from_env(
            tok, tok.convert_tokens_to_ids(spec.tokens.image_span[0]), spec.tokens.end_of_turn
        )

    def _load(self) -> tuple[Any, Any]:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        path = _field(self.model_config, "local_path") or _field(self.model_config, "path")
        torch.set_num_threads(max(1, int(os.environ.get("COF_HF_ROLLOUT_THREADS", "1"))))
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)
        return model.eval(), AutoProcessor.from_pretrained(path)

    def get_server_address(self) -> tuple[str, int]:
        return f"hf-rollout-{self.replica_rank}", 0

    def _inputs(self, prompt_ids: list[int], images: list | None) -> dict:
        ids = torch.tensor([list(prompt_ids)], dtype=torch.long)
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        if images:
            pixels = self.processor.image_processor(images=images, return_tensors="pt")
            inputs.update(
                pixel_values=pixels["pixel_values"], image_grid_thw=pixels["image_grid_thw"]
            )
        if "mm_token_type_ids" in getattr(self.processor, "model_input_names", ()):
            # Qwen3-VL's M-RoPE needs to know which ids are image tokens; the processor
            # derives it from the ids alone, as it does for its own outputs.
            types = self.processor.create_mm_token_type_ids(ids.tolist())
            inputs["mm_token_type_ids"] = torch.tensor(types, dtype=torch.int)
        return inputs

    def _generate(self, prompt_ids: list[int], params: dict, images: list | None) -> TokenOutput:
        want_logprobs = bool(params.pop("logprobs", False))
        budget = max_new_tokens(self.config, len(prompt_ids), params)
        scripted = self.script.reply(prompt_ids, budget) if self.script else None
        if scripted is not None:
            return self._output(prompt_ids, scripted, images, want_logprobs)
        gen = self.model.generation_config
        kwargs = generation_kwargs(params, budget, gen.eos_token_id, gen.pad_token_id)
        kwargs["suppress_tokens"] = self.placeholder_ids
        with torch.no_grad():
            out = self.model.generate(
                **self._inputs(prompt_ids, images),
                **kwargs,
                output_logits=want_logprobs,
                return_dict_in_generate=True,
            )
        tokens = out.sequences[0, len(prompt_ids) :].tolist()
        logprobs = None
        if want_logprobs:
            logits = torch.stack(out.logits, dim=1)[0].float().log_softmax(-1)
            logprobs = logits.gather(-1, torch.tensor(tokens)[:, None])[:, 0].tolist()
        return self._token_output(tokens, logprobs)

    def _output(self, prompt_ids: list[int], tokens: list[int], images, want: bool) -> TokenOutput:
        """A scripted reply, with the model's own log-probs of it when asked for."""
        logprobs = None
        if want:
            inputs = self._inputs([*prompt_ids, *tokens], images)
            with torch.no_grad():
                logits = self.model(**inputs).logits[0, len(prompt_ids) - 1 : -1]
            picked = logits.float().log_softmax(-1).gather(-1, torch.tensor(tokens)[:, None])
            logprobs = picked[:, 0].tolist()
        return self._token_output(tokens, logprobs)

    def _token_output(self, tokens: list[int], logprobs: list[float] | None) -> TokenOutput:
        return TokenOutput(
            token_ids=tokens,
            log_probs=logprobs,
            stop_reason="completed",
            extra_fields={"global_steps": self.global_steps},
        )

    async def generate(
        self,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        request_id: str,
        image_data: list | None = None,
        video_data: list | None = None,
        **_: Any,
    ) -> TokenOutput:
        if video_data:
            raise ValueError("the hf rollout serves images only; video_data was given")
        async with self._lock:
            return await asyncio.to_thread(
                self._generate, prompt_ids, dict(sampling_params), image_data
            )

    async def load_weights(self, state: dict[str, torch.Tensor], global_steps: int | None = None):
        """Copy the actor's tensors in; every name must be one of this model's parameters."""
        async with self._lock:
            own = self.model.state_dict()
            unknown = sorted(set(state) - set(own))
            if unknown:
                raise KeyError(f"actor sent weights this model lacks, e.g. {unknown[:3]}")
            self.model.load_state_dict(state, strict=False)
            self.global_steps = global_steps
            self.weight_versions += 1
            return self.weight_versions

    async def param_checksum(self) -> float:
        """Sum of every parameter: lets tests see that weights moved after a sync."""
        with torch.no_grad():
            return float(sum(p.double().sum() for p in self.model.parameters()))

    async def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = global_steps

    async def _noop(self, *_: Any, **__: Any) -> dict:
        return {}

    # Memory is host memory here: sleeping, KV-cache and abort controls have nothing to do.
    wake_up = sleep = clear_kv_cache = release_kv_cache = resume_kv_cache = _noop
    abort_all_requests = resume_generation = wait_for_requests_to_drain = _noop
    start_profile = stop_profile = _noop


class HFReplica(RolloutReplica):
    """Starts one ``HFRolloutServer`` per replica, on the node of its actor worker."""

    def rollout_worker_use_gpu(self) -> bool:
        return False

    async def launch_servers(self) -> None:
        node_id = None
        if self.workers:
            node_id = await self.workers[0].__ray_call__.remote(
                lambda _: ray.get_runtime_context().get_node_id()
            )
        options: dict[str, Any] = {"name": server_name(self.replica_rank), "num_cpus": 0}
        if node_id is not None:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id, soft=False)
        server_cls = ray.remote(HFRolloutServer)
        server = server_cls.options(**options, max_concurrency=self.max_concurrency).remote(
            config=self.config, model_config=self.model_config, replica_rank=self.replica_rank
        )
        address, _ = await server.get_server_address.remote()
        self.servers = [server]
        self._server_handle = server
        self._server_address = address


def full_cpu_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """A plain CPU copy of a (possibly sharded DTensor) parameter."""
    if hasattr(tensor, "full_tensor"):
        tensor = tensor.full_tensor()
    return tensor.detach().to("cpu", copy=True)


class HFServerAdapter(BaseRollout):
    """The actor worker's handle on its replica's server: weights go through Ray."""

    def __init__(self, config: Any, model_config: Any, device_mesh: Any, *args: Any, **kw: Any):
        super().__init__(config, model_config, device_mesh)
        rank = int(os.environ.get("RANK", "0"))
        size = self.config.tensor_model_parallel_size * self.config.data_parallel_size
        self.replica_rank = rank // size
        self.is_leader = rank % size == 0

    async def resume(self, tags: list[str]) -> None:
        return None

    async def release(self) -> None:
        return None

    async def update_weights(self, weights, wire_format: str = "named_tensors", **kwargs: Any):
        if wire_format != "named_tensors":
            raise ValueError(f"the hf rollout takes named_tensors weights, not {wire_format!r}")
        if kwargs.get("peft_config") is not None:
            raise NotImplementedError(
                "the hf rollout does not sync LoRA adapters; merge them first"
            )
        state = {name: full_cpu_tensor(t) for name, t in weights}
        if not self.is_leader:
            return None
        server = ray.get_actor(server_name(self.replica_rank))
        await server.load_weights.remote(state, kwargs.get("global_steps"))
        return None
