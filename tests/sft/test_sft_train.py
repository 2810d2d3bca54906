"""Real runs through `cof sft` and `cof export` on CPU with the tiny model."""

from __future__ import annotations

import argparse
import json
import math

import pytest

from cof_plugins.commands import export as export_cmd
from cof_plugins.commands import sft as sft_cmd

from .conftest import RECIPES


def cof(*argv: str) -> int:
    """Run a sub-command the way `cof` does, from our command modules."""
    parser = argparse.ArgumentParser(prog="cof")
    sub = parser.add_subparsers()
    sft_cmd.add_parser(sub)
    export_cmd.add_parser(sub)
    args, extra = parser.parse_known_args(list(argv))  # as cof_plugins.cli.main does
    args.extra = extra
    return args.func(args)


def _losses(out):
    lines = (out / "trainer_log.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines if "loss" in json.loads(line)]


@pytest.fixture(scope="module")
def trained(tiny_model, cof_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("sft") / "run"
    code = cof(
        "sft",
        str(RECIPES / "tiny_cpu.yaml"),
        f"model_name_or_path={tiny_model}",
        f"dataset_dir=cof:{cof_data}",
        f"output_dir={out}",
        "max_steps=3",
    )
    assert code == 0
    return out


def test_sft_trains_and_writes_an_adapter(trained):
    losses = _losses(trained)
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    assert (trained / "adapter_model.safetensors").is_file()
    config = json.loads((trained / "adapter_config.json").read_text())
    assert config["r"] == 8 and not config["modules_to_save"]
    assert {"model.visual.merger.mlp.0", "model.visual.merger.mlp.2"} <= set(
        config["target_modules"]
    )  # the projector trained through LoRA, as the release did
    rank = json.loads((trained / "cof_ranks/rank-0.json").read_text())
    assert rank["world_size"] == 1 and "cof_qwen2_5_vl" in rank["cof_templates"]
    assert (trained / "cof_sft_config.yaml").is_file()


def test_export_merges_into_a_loadable_cof_checkpoint(trained, tiny_model, tmp_path):
    import torch
    import transformers

    from cof_plugins.core.chat_template import chat_template

    out = tmp_path / "merged"
    assert cof("export", "--adapter", str(trained), "--out", str(out)) == 0
    processor = transformers.AutoProcessor.from_pretrained(out)
    assert processor.chat_template == chat_template()
    assert processor.tokenizer.chat_template == chat_template()
    size = processor.image_processor.size
    assert (size["shortest_edge"], size["longest_edge"]) == (3136, 50176)  # tiny_cpu budget
    merged = transformers.AutoModelForImageTextToText.from_pretrained(out)
    base = transformers.AutoModelForImageTextToText.from_pretrained(tiny_model)
    changed = [
        n
        for n, p in merged.state_dict().items()
        if n in base.state_dict() and not torch.equal(p, base.state_dict()[n])
    ]
    assert any("q_proj" in n for n in changed) and any("merger" in n for n in changed)
    assert not any("lora" in n for n in merged.state_dict())
    record = json.loads((out / "cof_export.json").read_text())
    assert record["template"] == "cof_qwen2_5_vl" and record["base"] == str(tiny_model)


def test_export_needs_a_base(tmp_path, capsys):
    (tmp_path / "adapter").mkdir()
    code = cof("export", "--adapter", str(tmp_path / "adapter"), "--out", str(tmp_path / "o"))
    assert code == 2 and "--base" in capsys.readouterr().err


def test_sft_reports_bad_recipes_as_errors(tmp_path, capsys):
    code = cof("sft", str(RECIPES / "tiny_cpu.yaml"), "model_name_or_path=/m", "deepspeed=cof:x")
    assert code == 2 and "cof:zero3" in capsys.readouterr().err
    code = cof("sft", str(RECIPES / "tiny_cpu.yaml"), "--dry-run", "--bogus", "lr")
    assert code == 2 and "--bogus lr" in capsys.readouterr().err


def test_sft_two_cpu_processes_register_in_both_ranks(tiny_model, cof_data, tmp_path, monkeypatch):
    """torchrun (gloo) runs our entry module: both ranks see the CoF templates and train."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "ddp"
    code = cof(
        "sft",
        str(RECIPES / "tiny_cpu.yaml"),
        "--nproc-per-node",
        "2",
        f"model_name_or_path={tiny_model}",
        f"dataset_dir=cof:{cof_data}",
        f"output_dir={out}",
        "max_steps=2",
    )
    assert code == 0
    ranks = [json.loads((out / f"cof_ranks/rank-{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert all(r["world_size"] == 2 for r in ranks)
    assert ranks[0]["pid"] != ranks[1]["pid"]
    assert all("cof_qwen2_5_vl" in r["cof_templates"] for r in ranks)
    assert len(_losses(out)) == 2 and (out / "adapter_model.safetensors").is_file()
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["train_batch_size"] == 2 and state["global_step"] == 2


def test_topology_reads_the_environment():
    from cof_plugins.llamafactory.train import Topology, torchrun_command

    topo = Topology.from_env(
        {
            "NPROC_PER_NODE": "4",
            "NNODES": "2",
            "NODE_RANK": "1",
            "MASTER_ADDR": "10.0.0.1",
            "MASTER_PORT": "29511",
        }
    )
    assert topo.distributed and topo.nnodes == 2
    command = torchrun_command(RECIPES / "x.yaml", topo)
    assert command[1:3] == ["-m", "torch.distributed.run"]
    assert "--nproc_per_node=4" in command and "--master_addr=10.0.0.1" in command
    assert command[-3:-1] == ["-m", "cof_plugins.llamafactory.launch"]
    assert Topology.from_env({"NPROC_PER_NODE": "8"}, nproc_per_node=1).distributed is False
    with pytest.raises(ValueError, match="NNODES"):
        Topology.from_env({"NNODES": "two"})
