"""CoF templates: idempotent registration, no clobbering, token ids equal to the Jinja path."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from cof_plugins.core.families import BUILTIN, get_family
from cof_plugins.llamafactory.config import read_config
from cof_plugins.llamafactory.templates import close_with_opener, split_vision, template_names
from cof_plugins.llamafactory.train import prepare

from .conftest import RECIPES, write_cof_data


def test_register_is_idempotent_and_complete():
    from llamafactory.data.template import TEMPLATES

    from cof_plugins.llamafactory import register

    first = register()
    before = {name: TEMPLATES[name] for name in first}
    assert register() == first
    assert {name: TEMPLATES[name] for name in first} == before  # same objects, not replaced
    assert set(first) == {f"cof_{f}{s}" for f in BUILTIN for s in ("", "_maskvis")}
    assert all(TEMPLATES[n].default_system == "" for n in first)
    for family in BUILTIN:
        stop = TEMPLATES[f"cof_{family}"].stop_words
        assert stop[0] == get_family(family).tokens.end_of_turn
    assert TEMPLATES["cof_glm4v"].stop_words == ["<|user|>", "<|observation|>"]
    assert TEMPLATES["cof_qwen3_5"].stop_words == ["<|im_end|>"]


def test_register_refuses_to_replace_a_foreign_template(monkeypatch):
    from llamafactory.data import template as lf_template

    from cof_plugins.llamafactory import register

    foreign = lf_template.TEMPLATES["qwen2_vl"]
    monkeypatch.setitem(lf_template.TEMPLATES, "cof_qwen3_vl", foreign)
    with pytest.raises(ValueError, match=r"cof_qwen3_vl.*already registered by someone else"):
        register()
    assert lf_template.TEMPLATES["cof_qwen3_vl"] is foreign


def test_split_vision_moves_every_vision_token_to_a_source():
    vision = {7, 8, 9}
    pieces = split_vision([1, 2], [3, 7, 9, 9, 8, 4, 5, 7, 8], vision)
    assert pieces == [([1, 2], [3]), ([7, 9, 9, 8], [4, 5]), ([7, 8], [])]
    flat = [t for src, tgt in pieces for t in src + tgt]
    assert flat == [1, 2, 3, 7, 9, 9, 8, 4, 5, 7, 8]
    assert all(t not in vision for _, tgt in pieces for t in tgt)
    assert split_vision([1], [2, 3], vision) == [([1], [2, 3])]


def test_close_with_opener_trains_the_turn_ending_token():
    """GLM ends a turn by writing the next turn's opener (9 here): it moves into the target."""
    pairs = [([1, 2], [3]), ([9, 4], [5, 6]), ([9, 7], [8])]
    assert close_with_opener(pairs, 9) == [([1, 2], [3, 9]), ([4], [5, 6, 9]), ([7], [8, 9])]
    flat = [t for s, g in close_with_opener(pairs, 9) for t in s + g]
    assert flat == [1, 2, 3, 9, 4, 5, 6, 9, 7, 8, 9]


@pytest.mark.parametrize("family", BUILTIN)
def test_llamafactory_ids_equal_processor_jinja_ids(family, tiny_model_factory, tmp_path):
    """Two zooms, three images: LLaMA-Factory's ids == processor(apply_chat_template(...)).

    A family whose model ends its turn with the next turn's opener (GLM: ``<|user|>``) also
    ends the last turn with it in training; the Jinja render of a finished chat has no next
    turn, so that one token is the only difference.
    """
    import transformers

    from cof_plugins.llamafactory.preview import encode_rows

    model = tiny_model_factory(family)
    data = tmp_path / "data"
    write_cof_data(data, n=1)
    row = json.loads((data / "train.json").read_text())[0]
    spec = get_family(family)
    f = spec.factor  # frame-sized for this family, inside TINY_BUDGET
    for k, rel in enumerate(row["images"]):  # frame-sized for this family
        Image.new("RGB", (f * (4 + k), f * 3), "red").save(data / rel)
    assert len(row["images"]) == 3
    overrides = [f"model_name_or_path={model}", f"dataset_dir=cof:{data}", f"template=cof_{family}"]
    path = prepare(RECIPES / "tiny_cpu.yaml", [*overrides, f"output_dir={tmp_path / 'out'}"])
    rows, _ = encode_rows(read_config(path))
    processor = transformers.AutoProcessor.from_pretrained(model)
    text = processor.apply_chat_template(row["messages"], tokenize=False)
    images = [Image.open(data / rel) for rel in row["images"]]
    expected = list(processor(text=[text], images=images)["input_ids"][0])
    if spec.chat.opener_ends_turn:
        expected.append(processor.tokenizer.convert_tokens_to_ids(spec.tokens.end_of_turn))
    assert rows[0].input_ids == expected
    pad = processor.tokenizer.convert_tokens_to_ids(spec.tokens.image)
    assert rows[0].input_ids.count(pad) == sum((4 + k) * 3 for k in range(3))
    # The model is trained to end every assistant turn with the family's end-of-turn token.
    end = processor.tokenizer.convert_tokens_to_ids(spec.tokens.end_of_turn)
    trained_ends = [i for i, label in enumerate(rows[0].labels) if label == end]
    assert len(trained_ends) == 3 and all(rows[0].input_ids[i] == end for i in trained_ends)


def test_every_template_name_is_listed():
    assert len(template_names()) == 2 * len(BUILTIN)
    assert all(name.startswith("cof_") for name in template_names())


def test_images_become_exactly_their_frame(tiny_model, tmp_path):
    """Odd-sized images are resized to core.frame.frame_size under the recipe's budget."""
    from cof_plugins.core.frame import image_tokens
    from cof_plugins.llamafactory.preview import encode_rows
    from cof_plugins.testbed.tiny_model import TINY_BUDGET

    data = tmp_path / "data"
    write_cof_data(data, n=1)
    row = json.loads((data / "train.json").read_text())[0]
    sizes = [(301, 199), (90, 400), (600, 500)]  # not frames; one above the budget
    for size, rel in zip(sizes, row["images"], strict=True):
        Image.new("RGB", size, "blue").save(data / rel)
    overrides = [f"model_name_or_path={tiny_model}", f"dataset_dir=cof:{data}"]
    path = prepare(
        RECIPES / "tiny_cpu.yaml", [*overrides, f"output_dir={tmp_path / 'out'}"], check=False
    )
    rows, tok = encode_rows(read_config(path))
    pad = tok.convert_tokens_to_ids("<|image_pad|>")
    expected = sum(image_tokens(s, "qwen2_5_vl", TINY_BUDGET) for s in sizes)
    assert rows[0].input_ids.count(pad) == expected
