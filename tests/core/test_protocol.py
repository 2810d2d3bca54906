"""Protocol presets and the canonical chat template."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from cof_plugins.core.chat_template import render
from cof_plugins.core.parser import format_tool_call, parse_turn
from cof_plugins.core.protocol import ProtocolError, available_protocols, load_protocol

VISION = "<|vision_start|><|image_pad|><|vision_end|>"


def test_presets_are_named_variants():
    assert {"unified", "paper-eval", "paper-rl"} <= set(available_protocols())
    unified, paper_eval, paper_rl = (
        load_protocol(n) for n in ("unified", "paper-eval", "paper-rl")
    )
    assert paper_eval.system != unified.system  # own preamble
    assert paper_eval.user_suffix == unified.user_suffix  # inherited
    assert paper_rl.wrapper_position == "before_suffix"
    for proto in (unified, paper_eval, paper_rl):
        tools = proto.system.split("<tools>\n")[1].split("\n</tools>")[0]
        assert json.loads(tools)["function"]["name"] == "image_zoom_in_tool"


def test_unknown_preset_lists_available():
    with pytest.raises(ProtocolError, match=r"unknown protocol 'unifed' \(did you mean 'unified'"):
        load_protocol("unifed")
    with pytest.raises(ProtocolError, match=re.escape(", ".join(available_protocols()))):
        load_protocol("nope")


def test_question_text_letters_wrapper_and_suffix():
    proto = load_protocol("unified")
    text = proto.question_text("What colour is the star?", ["red", "blue", "green"])
    assert "(A) red\n(B) blue\n(C) green" in text
    assert proto.wrappers["multiple_choice"] in text
    assert text.endswith(proto.user_suffix)
    assert proto.wrappers["open"] in proto.question_text("How many?")
    rl = load_protocol("paper-rl").question_text("Q?", ["a", "b"])
    assert rl.index(proto.wrappers["multiple_choice"]) < rl.index(proto.user_suffix)
    with pytest.raises(ValueError, match="known kinds"):
        proto.question_text("Q?", kind="essay")


def _two_zoom_conversation():
    proto = load_protocol()
    call = format_tool_call("image_zoom_in_tool", {"bbox_2d": [10, 20, 110, 120]})
    return [
        *proto.prompt_messages("What word is on the sign?", ["cat", "sun"]),
        {"role": "assistant", "content": "<think>too small</think>\n" + call},
        {"role": "user", "content": proto.crop_user_turn()},
        {"role": "assistant", "content": "<think>closer</think>\n" + call},
        {"role": "user", "content": proto.crop_user_turn()},
        {"role": "assistant", "content": "<think>it says sun</think>\n<answer>B</answer>"},
    ]


def test_template_renders_turns_verbatim():
    msgs = _two_zoom_conversation()
    text = render(msgs)
    assert text.startswith("<|im_start|>system\n")
    assert text.count(VISION) == 3
    assert text.count("<|im_start|>assistant\n<think>") == 3
    assert "<|im_start|>user\n" + VISION + "\n" + load_protocol().user_suffix in text
    # Assistant text survives verbatim, tool call parseable from the rendered turn.
    turn = text.split("<|im_start|>assistant\n")[1].split("<|im_end|>")[0]
    assert parse_turn(turn).tool_calls[0].bbox == (10.0, 20.0, 110.0, 120.0)
    assert render(msgs[:2], add_generation_prompt=True).endswith("<|im_start|>assistant\n")


def test_tool_role_is_a_user_turn_and_structured_calls_render_inline():
    proto = load_protocol()
    base = proto.prompt_messages("Q?")
    call = {"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 3, 4]}}
    crop = [{"type": "image"}, {"type": "text", "text": "\n" + proto.user_suffix}]
    as_tool = [
        *base,
        {"role": "assistant", "content": "<think>x</think>", "tool_calls": [{"function": call}]},
        {"role": "tool", "content": crop},
    ]
    as_text = [*base, {"role": "assistant", "content": "<think>x</think>\n" + format_tool_call(
        "image_zoom_in_tool", {"bbox_2d": [1, 2, 3, 4]})},
        {"role": "user", "content": proto.crop_user_turn()}]  # fmt: skip
    assert render(as_tool) == render(as_text)


def test_template_matches_processor_rendering(tiny_model):
    import transformers

    processor = transformers.AutoProcessor.from_pretrained(tiny_model)
    msgs = _two_zoom_conversation()
    assert processor.apply_chat_template(msgs, tokenize=False) == render(msgs)


def test_crop_role_option_puts_tool_turns_in_the_assistant_role():
    """The release's RL appended crops with the assistant role: a named profile option."""
    from cof_plugins.core.profiles import get_profile

    messages = _two_zoom_conversation()[:3]
    messages[-1] = {"role": "tool", "content": [{"type": "image"}, {"type": "text", "text": "S"}]}
    as_user = render(messages)
    assert as_user.endswith(f"<|im_start|>user\n{VISION}S<|im_end|>\n")
    assert get_profile("paper").chat_template_kwargs() == {}  # paper keeps crops in user turns
    release = render(messages, cof_crop_role="assistant")
    assert release.endswith(f"<|im_start|>assistant\n{VISION}S<|im_end|>\n")
    assert release.replace(f"assistant\n{VISION}S", f"user\n{VISION}S") == as_user


# ---------------------------------------------------------------- protocols from a file

RELEASE_SUFFIX = "Think first, then call the tool or answer. (our team's exact string)"


def _write(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_file_of_ones_own_is_a_protocol(tmp_path, monkeypatch):
    path = _write(tmp_path / "release.yaml", {
        "inherit": "unified", "user_suffix": RELEASE_SUFFIX,
        "wrappers": {"open": "One word."},
    })  # fmt: skip
    unified = load_protocol("unified")
    for spec in (str(path), path):
        proto = load_protocol(spec)
        assert proto.user_suffix == RELEASE_SUFFIX and proto.system == unified.system
        assert proto.wrappers == {**unified.wrappers, "open": "One word."}  # merged by kind
        assert proto.name == "release" and proto.description == ""  # never inherited
        assert proto.source == str(path)
    monkeypatch.chdir(tmp_path)
    assert load_protocol("./release.yaml").user_suffix == RELEASE_SUFFIX
    assert load_protocol("release.yaml").digest == proto.digest != unified.digest
    text = proto.question_text("Q?", ["a", "b"])
    assert text.endswith(RELEASE_SUFFIX) and unified.wrappers["multiple_choice"] in text


def test_a_missing_file_never_falls_back_to_a_preset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ProtocolError, match=r"protocol file 'unified.yaml' not found \(looked at"):
        load_protocol("unified.yaml")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"inherit": "unified", "sytem": "x {tools}"},
         r"unknown key 'sytem' \(did you mean 'system'\?\); valid keys: name,"),
        ({"name": "x", "system": "{tools}", "question": "{question}"},
         r"missing required key 'tool_schema'; add it, or inherit a preset"),
        ({"inherit": "unified", "wrappers": {"multiple_choice": "x"}, "user_suffix": 3},
         r"key 'user_suffix' must be text, got int 3"),
        ({"inherit": "unified", "wrappers": ["a"]}, r"key 'wrappers' must be a mapping"),
        ({"inherit": "unified", "wrappers": {"opne": "x"}},
         r"key 'wrappers.opne' is not a question kind \(did you mean 'open'\?\)"),
        ({"inherit": "unified", "wrapper_position": "before-suffix"},
         r"'wrapper_position' is 'before-suffix' \(did you mean 'before_suffix'\?\)"),
        ({"inherit": "unified", "tool_schema": {"type": "function", "function": {
            "name": "zoom", "parameters": {}}}},
         r"key 'tool_schema.function.name' is 'zoom'; the zoom tool answers to"),
        ({"inherit": "unified", "tool_schema": {"function": {}}},
         r"key 'tool_schema' must be a mapping with type: function"),
        # A tool-less protocol (tool_schema: {}) still allows only {tools} in its system.
        ({"inherit": "unified", "tool_schema": {}, "system": "Use {tool}"},
         r"key 'system' has the placeholder \{tool\}"),
        ({"inherit": "nope"},
         r"key 'inherit': 'nope' is neither a shipped preset \((\w|-|, )*paper-eval, "
         r"paper-rl, (\w|-|, )*unified\)"),
        ({"inherit": "missing.yaml"}, r"nor a file \(looked at .*missing\.yaml\)"),
        ({"inherit": ["unified"]}, r"key 'inherit' must be text"),
        ({"inherit": "unified", "system": "Tools: {tool}"},
         r"key 'system' has the placeholder \{tool\} \(did you mean \{tools\}\?\)"),
        ({"inherit": "unified", "system": "no tools here"}, r"key 'system' must hold \{tools\}"),
        ({"inherit": "unified", "system": "{tools} and {\"name\": 1}"},
         r"key 'system' has the placeholder \{\"name\"|key 'system' is a malformed template"),
        ({"inherit": "unified", "system": "{tools} }"},
         r"key 'system' is a malformed template \(Single '\}' encountered"),
        ({"inherit": "unified", "question": "Q: {question!r}"},
         r"key 'question': write \{question\} plainly"),
        ({"inherit": "unified", "question": "Q: {q}"}, r"placeholder \{q\}.*only hold"),
        ({"inherit": "unified", "user_suffix": "About {question}: think."},
         r"key 'user_suffix' is shown as written, so \{question\} would reach the model"),
        ([1, 2], r"a protocol file is a mapping of keys"),
        ("name: [unclosed\n", r"not valid YAML at line 2, column 1"),
    ],
)  # fmt: skip
def test_every_error_names_the_file_and_the_key(tmp_path, content, message):
    path = _write(tmp_path / "mine.yaml", content if isinstance(content, str) else
                  yaml.safe_dump(content))  # fmt: skip
    with pytest.raises(ProtocolError, match=message) as err:
        load_protocol(path)
    assert str(path) in str(err.value)


def test_missing_wrapper_kind_and_non_utf8(tmp_path):
    path = _write(tmp_path / "w.yaml", {"inherit": "unified"})
    base = load_protocol("unified")
    data = {k: v for k, v in yaml.safe_load(
        (Path(base.source)).read_text()).items()}  # fmt: skip
    data["wrappers"] = {"open": "x"}
    _write(path, data)
    with pytest.raises(ProtocolError, match=r"missing required key 'wrappers.multiple_choice'"):
        load_protocol(path)
    path.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ProtocolError, match=r"w\.yaml: not UTF-8 text"):
        load_protocol(path)


def test_inherit_chains_through_files_and_cycles_are_errors(tmp_path):
    _write(tmp_path / "base.yaml", {"inherit": "paper-rl", "user_suffix": RELEASE_SUFFIX})
    (tmp_path / "sub").mkdir()
    leaf = _write(tmp_path / "sub" / "leaf.yaml", {"inherit": "../base.yaml", "name": "leaf"})
    proto = load_protocol(leaf)
    assert proto.user_suffix == RELEASE_SUFFIX and proto.wrapper_position == "before_suffix"
    _write(tmp_path / "a.yaml", {"inherit": "b.yaml"})
    _write(tmp_path / "b.yaml", {"inherit": "a.yaml"})
    with pytest.raises(ProtocolError, match=r"a\.yaml: inherit makes a cycle: .*a\.yaml -> "):
        load_protocol(tmp_path / "a.yaml")


def _touch_later(path: Path) -> None:
    """Edits within one clock tick must still be seen: move the mtime on explicitly."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


def test_cache_serves_an_unchanged_file_and_rereads_a_changed_one(tmp_path):
    parent = _write(tmp_path / "parent.yaml", {"inherit": "unified", "user_suffix": "one"})
    child = _write(tmp_path / "child.yaml", {"inherit": "parent.yaml", "name": "child"})
    first = load_protocol(child)
    assert load_protocol(child) is first  # unchanged: from memory
    _write(child, {"inherit": "parent.yaml", "name": "child", "user_suffix": "two"})
    _touch_later(child)
    second = load_protocol(child)
    assert second.user_suffix == "two" and first.user_suffix == "one"  # old object unchanged
    _write(parent, {"inherit": "unified", "user_suffix": "three", "options_header": "Pick:"})
    _touch_later(parent)
    assert load_protocol(child).options_header == "Pick:"  # an inherited file changed too
    _write(child, {"inherit": "parent.yaml", "user_suffix": "two", "sytem": "x"})
    _touch_later(child)
    with pytest.raises(ProtocolError, match="sytem"):  # a broken edit is reported, not hidden
        load_protocol(child)


def test_digest_follows_the_text_not_the_name(tmp_path):
    a = _write(tmp_path / "a.yaml", {"inherit": "unified", "name": "a", "description": "x"})
    b = _write(tmp_path / "b.yaml", {"inherit": "unified", "name": "b"})
    c = _write(tmp_path / "c.yaml", {"inherit": "unified", "options_header": "Choices:"})
    assert load_protocol(a).digest == load_protocol(b).digest == load_protocol("unified").digest
    assert load_protocol(c).digest != load_protocol(a).digest


def test_commands_and_recipes_check_the_file_before_any_work(tmp_path):
    from cof_plugins.data.synthesize import SynthConfig
    from cof_plugins.verl.tool_settings import parse_settings

    bad = _write(tmp_path / "bad.yaml", {"inherit": "unified", "user_sufix": "x"})
    with pytest.raises(ProtocolError, match=r"bad\.yaml: unknown key 'user_sufix'"):
        SynthConfig(protocol=str(bad))
    with pytest.raises(ProtocolError, match=r"bad\.yaml: unknown key 'user_sufix'"):
        parse_settings({"type": "native", "protocol": str(bad)})
    good = _write(tmp_path / "good.yaml", {"inherit": "unified", "user_suffix": RELEASE_SUFFIX})
    assert parse_settings({"protocol": str(good)}).protocol == str(good)


def test_cof_eval_reports_a_bad_protocol_file_before_loading_a_model(tmp_path, capsys):
    from PIL import Image

    from cof_plugins.cli import main

    Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
    row = {"image": "a.png", "text": "Q?\n(A) x\n(B) y", "label": "A", "question_id": 0}
    (tmp_path / "test_questions.jsonl").write_text(json.dumps(row) + "\n")
    bad = _write(tmp_path / "team.yaml", {"inherit": "unified", "question": "{question"})
    argv = ["eval", "--data", str(tmp_path), "--model", str(tmp_path / "no-such-model"),
            "--run-dir", str(tmp_path / "run"), "--protocol", str(bad)]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{bad}: key 'question' is a malformed template" in err
    assert not (tmp_path / "run").exists()
