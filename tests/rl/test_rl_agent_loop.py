"""Drive verl's own ToolAgentLoop with our parser, tool and chat template (no server, no GPU).

The model is scripted: the fake server returns chosen assistant turns as token ids of the tiny
tokenizer. Everything else is verl 0.9.1's code path: the registered ``cof`` parser, the tool
dispatch (create -> execute -> release), the continuous-token builder and the processor.
"""

from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("verl")

from omegaconf import OmegaConf
from PIL import Image

from cof_plugins.core.families import BUILTIN, get_family
from cof_plugins.core.frame import frame_size
from cof_plugins.core.protocol import load_protocol
from cof_plugins.testbed.tiny_model import TINY_BUDGET

# Cut off mid-box: no closing tag and no readable JSON.
MALFORMED = (
    "<think>zoom</think> <tool_call>\n"
    '{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [10, 20,'
)
# Single quotes, a trailing comma and no closing tag: the lenient parser still reads it.
VALID_LENIENT = (
    "<think>again</think> <tool_call>\n"
    "{'name': 'image_zoom_in_tool', 'arguments': {'bbox_2d': [20, 30, 120, 110],}}"
)
ANSWER = "<think>I see it.</think> <answer>B</answer>"


class ScriptedServer:
    """Stands in for verl's LLM server client: returns the next scripted turn's token ids."""

    def __init__(self, tokenizer, turns: list[str], end_of_turn: str = "<|im_end|>"):
        self.tokenizer = tokenizer
        self.turns = list(turns)
        self.end_of_turn = end_of_turn
        self.calls: list[dict] = []

    async def generate(self, request_id, prompt_ids, sampling_params, image_data=None, **kwargs):
        from verl.workers.rollout.replica import TokenOutput

        self.calls.append({"prompt_ids": list(prompt_ids), "images": list(image_data or [])})
        text = self.turns.pop(0)
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        ids.append(self.tokenizer.convert_tokens_to_ids(self.end_of_turn))
        return TokenOutput(token_ids=ids, log_probs=[0.0] * len(ids))


def _dataset_cls(frame: Image.Image):
    class FrameDataset:
        @staticmethod
        async def process_multi_modal_info(messages, image_patch_size, config):
            return [frame], None, None

    return FrameDataset


def _tool_yaml(tmp_path, family: str = "qwen2_5_vl") -> str:
    path = tmp_path / "tool.yaml"
    config = {
        "tools": [
            {
                "class_name": "cof_plugins.verl.ZoomInTool",
                "config": {
                    "type": "native",
                    "family": family,
                    "zoom": {"max_pixels": TINY_BUDGET.max_pixels, "full_resolution": False},
                },
            }
        ]
    }
    path.write_text(OmegaConf.to_yaml(OmegaConf.create(config)))
    return str(path)


def _loop(tiny_model, tmp_path, turns, frame, family: str = "qwen2_5_vl"):
    from transformers import AutoProcessor
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap
    from verl.experimental.agent_loop.tool_agent_loop import ToolAgentLoop
    from verl.tools.tool_registry import initialize_tools_from_config

    from cof_plugins.verl import register

    register()
    processor = AutoProcessor.from_pretrained(tiny_model)
    rollout = {
        "prompt_length": 8192,
        "response_length": 4096,
        "multi_turn": {
            "max_user_turns": 4,
            "max_assistant_turns": 4,
            "max_parallel_calls": 1,
            "max_tool_response_length": 2048,
            "tool_response_truncate_side": "middle",
            "format": "cof",
        },
        "full_determinism": False,
    }
    trainer_config = OmegaConf.create({"actor_rollout_ref": {"rollout": rollout}})
    data_config = OmegaConf.create({"apply_chat_template_kwargs": {}, "mm_processor_kwargs": {}})
    spec = get_family(family)
    server = ScriptedServer(processor.tokenizer, turns, spec.tokens.end_of_turn)
    loop = ToolAgentLoop(
        trainer_config=DictConfigWrap(trainer_config),
        server_manager=server,
        tokenizer=processor.tokenizer,
        processor=processor,
        dataset_cls=_dataset_cls(frame),
        data_config=DictConfigWrap(data_config),
        hf_model_type=spec.hf_model_type,
        tools=ToolListWrap(initialize_tools_from_config(_tool_yaml(tmp_path, family))),
    )
    return loop, server, processor


def _prompt(frame_wh):
    protocol = load_protocol()
    return [
        {"role": "system", "content": protocol.system},
        {
            "role": "user",
            "content": [
                {"type": "image"},
                {"type": "text", "text": "\n" + protocol.question_text("What colour is it?")},
            ],
        },
    ]


@pytest.fixture(scope="module")
def rollout(tiny_model, tmp_path_factory):
    """One scripted trajectory: an unreadable call, a lenient call, then an answer."""
    wh = frame_size((640, 480), "qwen2_5_vl", TINY_BUDGET)
    frame = Image.new("RGB", wh, (40, 120, 200))
    loop, server, processor = _loop(
        tiny_model, tmp_path_factory.mktemp("loop"), [MALFORMED, VALID_LENIENT, ANSWER], frame
    )
    kwargs = {
        "raw_prompt": _prompt(wh),
        "tools_kwargs": {
            "image_zoom_in_tool": {
                "create_kwargs": {"frame_size": list(wh), "family": "qwen2_5_vl"}
            }
        },
    }
    # verl binds the agent loop to the event loop current at construction.
    output = loop.loop.run_until_complete(loop.run({"temperature": 1.0}, **kwargs))
    return output, server, processor, wh


def test_unreadable_call_gets_an_error_turn_and_the_rollout_goes_on(rollout):
    output, server, processor, _ = rollout
    assert len(server.calls) == 3  # the malformed call did not end the trajectory
    second_prompt = processor.tokenizer.decode(server.calls[1]["prompt_ids"])
    tail = second_prompt.rsplit("<|im_start|>user\n", 1)[1]
    assert tail.startswith("Your tool call could not be read")
    assert tail.endswith(load_protocol().user_suffix + "<|im_end|>\n<|im_start|>assistant\n")
    fields = output.extra_fields
    assert fields["cof_zoom_parse_errors"] == 1 and fields["cof_zoom_invalid"] == 1
    assert fields["tool_rewards"][0] < 0


def test_lenient_call_returns_a_crop_snapped_to_the_family_factor(rollout):
    output, server, _, wh = rollout
    images = server.calls[2]["images"]
    assert len(images) == 2 and images[0].size == wh
    w, h = images[1].size
    assert w % 28 == 0 and h % 28 == 0
    assert output.extra_fields["cof_zoom_valid"] == 1
    assert output.extra_fields["cof_zoom_calls"] == 2
    assert output.num_turns == 2 + 3 + 1  # user turns + assistant turns + 1


def test_incremental_tokens_equal_one_render_of_the_whole_conversation(rollout):
    """The continuous-token builder's diffs of our template add up to the full render."""
    output, _, processor, _ = rollout
    protocol = load_protocol()
    crop_text = protocol.crop_user_turn(1).removeprefix("<image>")
    messages = [
        *_prompt(None),
        {"role": "assistant", "content": MALFORMED},
        {"role": "tool", "content": _error_text(processor, output)},
        {"role": "assistant", "content": VALID_LENIENT},
        {"role": "tool", "content": [{"type": "image"}, {"type": "text", "text": crop_text}]},
        {"role": "assistant", "content": ANSWER},
    ]
    expected = processor.apply_chat_template(messages, tokenize=False)
    ids = output.prompt_ids + output.response_ids
    got = _collapse_pads(processor.tokenizer.decode(ids))
    assert got == expected.rstrip("\n")


def test_only_assistant_tokens_are_trained(rollout):
    output, _, processor, _ = rollout
    trained = [t for t, m in zip(output.response_ids, output.response_mask, strict=True) if m]
    text = processor.tokenizer.decode(trained)
    assert "could not be read" not in text and "<|image_pad|>" not in text
    assert text.endswith(ANSWER + "<|im_end|>")


def _error_text(processor, output) -> str:
    decoded = processor.tokenizer.decode(output.prompt_ids + output.response_ids)
    return decoded.split("<|im_start|>user\n")[2].split("<|im_end|>")[0]


def _collapse_pads(text: str) -> str:
    return re.sub(r"(<\|image_pad\|>)+", "<|image_pad|>", text)


def _call(box: list[int]) -> str:
    args = {"name": "image_zoom_in_tool", "arguments": {"bbox_2d": box}}
    return "<tool_call>\n" + json.dumps(args) + "\n</tool_call>"


TWO_ZOOMS = [
    "<think>The target is small.</think>\n" + _call([20, 30, 120, 110]),
    "<think>Closer still.</think>\n" + _call([40, 40, 90, 90]),
    "<think>It is blue.</think>\n<answer>B</answer>",
]


@pytest.mark.parametrize("family", BUILTIN)
def test_sft_ids_equal_the_agent_loop_ids_for_two_zooms(family, tiny_model_factory, tmp_path):
    """LLaMA-Factory's ids == the processor's chat-template ids == verl's agent-loop ids.

    The same conversation (question image, two zooms, answer) as a canonical SFT row, encoded
    by LLaMA-Factory through `cof sft`'s own preparation, by the processor from the family's
    Jinja template, and built turn by turn by verl's ToolAgentLoop with our parser and tool:
    SFT and RL train on the same tokens, for every family. The only differences are where
    a finished chat ends: a Qwen rollout stops at ``<|im_end|>`` while training closes the
    turn with ``<|im_end|>\n``; GLM ends every turn with ``<|user|>``, which the Jinja render
    of a finished chat has no next turn to write.
    """
    from transformers import AutoProcessor

    from cof_plugins.assets import recipes_dir
    from cof_plugins.llamafactory.config import read_config
    from cof_plugins.llamafactory.preview import encode_rows
    from cof_plugins.llamafactory.train import prepare

    spec = get_family(family)
    model = tiny_model_factory(family)
    wh = frame_size((640, 480), family, TINY_BUDGET)
    frame = Image.new("RGB", wh, "blue")
    loop, server, processor = _loop(model, tmp_path, TWO_ZOOMS, frame, family)
    kwargs = {"raw_prompt": _prompt(wh), "tools_kwargs": {"image_zoom_in_tool": {
        "create_kwargs": {"frame_size": list(wh), "family": family}}}}  # fmt: skip
    output = loop.loop.run_until_complete(loop.run({"temperature": 1.0}, **kwargs))
    images = server.calls[2]["images"]
    assert len(images) == 3  # the frame and two crops
    assert all(w % spec.factor == 0 and h % spec.factor == 0 for w, h in (i.size for i in images))

    protocol = load_protocol()
    data = tmp_path / "sft"
    (data / "images").mkdir(parents=True)
    for k, image in enumerate(images):
        image.save(data / "images" / f"{k}.png")
    messages = [
        {"role": "system", "content": protocol.system},
        {"role": "user", "content": protocol.first_user_turn("What colour is it?")},
    ]
    for turn in TWO_ZOOMS[:-1]:
        messages += [{"role": "assistant", "content": turn},
                     {"role": "user", "content": protocol.crop_user_turn()}]  # fmt: skip
    messages.append({"role": "assistant", "content": TWO_ZOOMS[-1]})
    row = {"messages": messages, "images": [f"images/{k}.png" for k in range(3)]}
    (data / "train.json").write_text(json.dumps([row]))
    config = prepare(recipes_dir() / "sft" / "tiny_cpu.yaml", [
        f"model_name_or_path={model}", f"dataset_dir=cof:{data}", f"template={spec.cof_template}",
        f"output_dir={tmp_path / 'out'}"])  # fmt: skip
    rows, _ = encode_rows(read_config(config))

    processor = AutoProcessor.from_pretrained(model)
    text = processor.apply_chat_template(messages, tokenize=False)
    jinja_ids = list(processor(text=[text], images=images)["input_ids"][0])
    verl_ids = output.prompt_ids + output.response_ids
    tok = processor.tokenizer
    if spec.chat.opener_ends_turn:
        end = [tok.convert_tokens_to_ids(spec.tokens.end_of_turn)]
        assert rows[0].input_ids == verl_ids == jinja_ids + end
    else:
        newline = tok.encode("\n", add_special_tokens=False)
        assert rows[0].input_ids == jinja_ids == verl_ids + newline
    assert sum(output.response_mask) < len(output.response_mask)  # crops are not trained
