"""The vLLM backend's calls (against a stand-in module) and the ``cof eval`` command line."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types
from types import SimpleNamespace

import pytest
from eval_support import answer, write_jsonl
from PIL import Image

from cof_plugins.core.protocol import load_protocol
from cof_plugins.eval.backends import BackendUnavailable, Request, make_backend
from cof_plugins.testbed.openai_server import FakeOpenAIServer


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_vllm_missing_is_a_clear_error():
    with pytest.raises(BackendUnavailable, match=r"cof-plugins\[vllm\]"):
        make_backend("vllm", model="m")


def _fake_vllm():
    module = types.ModuleType("vllm")
    module.__version__ = "0.0-test"
    module.made = []

    class SamplingParams:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class LLM:
        def __init__(self, **kwargs):
            self.kwargs, self.calls = kwargs, []
            module.made.append(self)

        def generate(self, prompts, params, use_tqdm=True):
            self.calls.append((prompts, params))
            out = SimpleNamespace(text="<think>t</think> <answer>A</answer>", token_ids=[1, 2, 3])
            return [SimpleNamespace(outputs=[out]) for _ in prompts]

    module.SamplingParams, module.LLM = SamplingParams, LLM
    return module


def test_vllm_batches_a_turn_with_canonical_prompts(monkeypatch):
    from cof_plugins.core.chat_template import render
    from cof_plugins.core.frame import PixelBudget

    fake = _fake_vllm()
    monkeypatch.setitem(sys.modules, "vllm", fake)
    backend = make_backend("vllm", model="ckpt", budget=PixelBudget(3136, 50176), max_images=6)
    (llm,) = fake.made
    assert llm.kwargs["limit_mm_per_prompt"] == {"image": 6}
    assert llm.kwargs["mm_processor_kwargs"] == {"min_pixels": 3136, "max_pixels": 50176}
    messages = load_protocol().prompt_messages("Q?", ["a", "b"])
    image = Image.new("RGB", (56, 56))
    out = backend.generate([Request(messages, [image]), Request(messages, [image])], 512)
    assert [g.tokens for g in out] == [3, 3] and out[0].text.endswith("</answer>")
    ((prompts, params),) = llm.calls
    assert len(prompts) == 2 and params.kwargs == {"temperature": 0.0, "max_tokens": 512}
    assert prompts[0]["prompt"] == render(messages, add_generation_prompt=True)
    assert prompts[0]["multi_modal_data"]["image"] == [image]
    assert backend.describe()["vllm"] == "0.0-test"


def _parser():
    from cof_plugins.commands import eval as cmd

    parser = argparse.ArgumentParser()
    cmd.add_parser(parser.add_subparsers())
    return parser


def test_cli_eval_through_the_openai_backend(tmp_path, synth_samples, synth_dir, capsys):
    data = write_jsonl(tmp_path / "set.jsonl", synth_samples[:2])
    letters = {s.question: s.answer for s in synth_samples[:2]}

    def respond(body):
        text = json.dumps(body["messages"][1]["content"])
        return answer(next(a for q, a in letters.items() if q in text))

    with FakeOpenAIServer(respond) as server:
        args = _parser().parse_args([
            "eval", "--data", str(data), "--image-root", str(synth_dir), "--model", "m",
            "--backend", "openai", "--url", server.url, "--run-dir", str(tmp_path / "run"),
            "--sweep", "224,448", "--no-judge", "--no-progress", "--profile", "paper",
        ])  # fmt: skip
        assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "overall" in out and "100.00" in out and "@224" in out
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["settings"]["loop"]["profile"] == "paper"
    assert info["settings"]["sweep"] == [224, 448]
    report = _parser().parse_args(["report", str(tmp_path / "run"), "-o", str(tmp_path / "rep")])
    assert report.func(report) == 0 and (tmp_path / "rep" / "report.html").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sweep", "224,abc"], "--sweep: 'abc'"),
        (["--backend", "openai"], "needs --url"),
        (["--max-turns", "0"], "max_turns must be >= 1"),
        (["--format", "hrbench"], "no 'image' column"),
        (["--samples", "2"], "pass --temperature"),
        (["--shuffle-options", "-1"], "--shuffle-options must be >= 0"),
        (["--temperature", "-1"], "temperature must be a number in [0, 10]"),
    ],
)
def test_cli_errors_are_clear(tmp_path, synth_samples, synth_dir, capsys, argv, message):
    data = write_jsonl(tmp_path / "set.jsonl", synth_samples[:1])
    base = ["eval", "--data", str(data), "--model", "m", "--run-dir", str(tmp_path / "r"),
            "--image-root", str(synth_dir), "--no-progress"]  # fmt: skip
    args = _parser().parse_args(base + argv)
    assert args.func(args) == 2
    assert message in capsys.readouterr().err


def test_report_of_a_missing_run_is_refused(tmp_path, capsys):
    args = _parser().parse_args(["report", str(tmp_path / "nothing")])
    assert args.func(args) == 2
    assert "not an eval run directory" in capsys.readouterr().err
