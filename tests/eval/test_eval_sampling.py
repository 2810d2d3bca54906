"""Sampled evaluation: per-request seeds in every backend, k draws stored and resumable."""

from __future__ import annotations

import json
import sys

import pytest
from eval_support import FakeBackend, answer, write_jsonl
from PIL import Image

from cof_plugins.core.protocol import load_protocol
from cof_plugins.eval.backends import Request, make_backend
from cof_plugins.eval.loop import LoopConfig
from cof_plugins.eval.runner import EvalSpec, run_eval
from cof_plugins.testbed.openai_server import FakeOpenAIServer
from cof_plugins.testbed.tiny_model import TINY_BUDGET

MESSAGES = load_protocol().prompt_messages("What colour?", ["red", "blue"])


@pytest.fixture(scope="module")
def backend(tiny_model):
    from cof_plugins.eval.backends.transformers import TransformersBackend

    return TransformersBackend(str(tiny_model), budget=TINY_BUDGET, device="cpu")


def test_transformers_draws_depend_on_their_seed_only(backend):
    image = Image.new("RGB", (112, 112), "red")
    a, b = Request(MESSAGES, [image], 1.0, 11), Request(MESSAGES, [image], 1.0, 22)
    greedy = Request(MESSAGES, [image])
    alone = backend.generate([a], 8)[0]
    mixed = backend.generate([b, greedy, a], 8)
    assert mixed[2].text == alone.text  # same seed, other batch companions: same draw
    assert mixed[0].text != alone.text  # another seed: another draw
    assert mixed[1].text == backend.generate([greedy], 8)[0].text  # greedy rows unaffected
    assert alone.prompt_tokens == mixed[2].prompt_tokens > 0


def _tiny_spec(data, tiny_model, synth_dir, **kw):
    loop = LoopConfig(min_pixels=TINY_BUDGET.min_pixels, max_pixels=TINY_BUDGET.max_pixels,
                      max_new_tokens=6, max_turns=1, batch_size=2, temperature=1.0)  # fmt: skip
    return EvalSpec(benchmark=str(data), model=str(tiny_model), image_root=str(synth_dir),
                    loop=loop, judge=False, samples=2, seed=5, **kw)  # fmt: skip


def _texts(run_dir):
    records = [json.loads(line) for line in (run_dir / "results.jsonl").open()]
    return {r["key"]: [t["text"] for t in r["trajectory"]] for r in records}, records


class Stop(Exception):
    pass


def test_draws_are_stored_seeded_and_resume_to_the_same_texts(
    tmp_path, backend, tiny_model, synth_samples, synth_dir
):
    data = write_jsonl(tmp_path / "set.jsonl", synth_samples[:2])
    spec = _tiny_spec(data, tiny_model, synth_dir)
    summary = run_eval(spec, tmp_path / "full", backend=backend, progress=False)
    full, records = _texts(tmp_path / "full")
    assert sorted(r["draw"] for r in records) == [0, 0, 1, 1]
    assert len({r["seed"] for r in records}) == 2 * 2 and all(r["seed"] for r in records)
    assert summary["overall"]["k"] == 2 and "pass_at_k" in summary["overall"]
    assert len({tuple(v) for v in full.values()}) > 1  # the draws differ

    def stop_after_first_batch(stored):
        raise Stop

    with pytest.raises(Stop):
        run_eval(spec, tmp_path / "resumed", backend=backend, progress=False,
                 on_batch=stop_after_first_batch)  # fmt: skip
    partial, _ = _texts(tmp_path / "resumed")
    assert 0 < len(partial) < 4
    run_eval(spec, tmp_path / "resumed", backend=backend, progress=False)
    resumed, _ = _texts(tmp_path / "resumed")
    assert resumed == full


def test_openai_requests_carry_temperature_and_per_draw_seeds(tmp_path, synth_samples, synth_dir):
    data = write_jsonl(tmp_path / "set.jsonl", synth_samples[:2])
    with FakeOpenAIServer(lambda body: answer("A")) as server:
        spec = EvalSpec(
            benchmark=str(data), model="m", backend="openai", image_root=str(synth_dir),
            loop=LoopConfig(batch_size=4, temperature=0.5), judge=False, samples=2,
            backend_options={"url": server.url, "concurrency": 2},
        )  # fmt: skip
        run_eval(spec, tmp_path / "run", progress=False)
        bodies = server.bodies
    assert len(bodies) == 4 and {b["temperature"] for b in bodies} == {0.5}
    assert len({b["seed"] for b in bodies}) == 4
    records = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").open()]
    assert {r["prompt_tokens"] for r in records} == {None}  # the fake server reports none


def test_vllm_gets_one_sampling_params_per_request(monkeypatch):
    from test_eval_vllm_cli import _fake_vllm

    fake = _fake_vllm()
    monkeypatch.setitem(sys.modules, "vllm", fake)
    backend = make_backend("vllm", model="ckpt")
    image = Image.new("RGB", (56, 56))
    backend.generate([Request(MESSAGES, [image], 0.7, 1), Request(MESSAGES, [image], 0.7, 2)], 9)
    ((_, params),) = fake.made[0].calls
    assert [p.kwargs for p in params] == [
        {"temperature": 0.7, "max_tokens": 9, "seed": 1},
        {"temperature": 0.7, "max_tokens": 9, "seed": 2},
    ]


def test_samples_without_temperature_is_refused(tmp_path, synth_samples, synth_dir):
    data = write_jsonl(tmp_path / "set.jsonl", synth_samples[:1])
    with pytest.raises(ValueError, match="--temperature"):
        EvalSpec(benchmark=str(data), model="m", samples=4)
    spec = EvalSpec(benchmark=str(data), model="m", image_root=str(synth_dir), judge=False,
                    loop=LoopConfig(temperature=0.8))  # fmt: skip
    summary = run_eval(spec, tmp_path / "r", backend=FakeBackend(lambda r, t: answer("A")),
                       progress=False)  # fmt: skip
    assert summary["samples"] == 1 and "pass_at_k" not in summary["overall"]
