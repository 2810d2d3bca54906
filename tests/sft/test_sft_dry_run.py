"""`cof sft --dry-run` asks LLaMA-Factory's own parser, as the launch would, and says the fix.

The paper recipe on this CPU machine meets every gap at once: no GPU for bf16, DeepSpeed and
liger-kernel not installed (when they are not), plus a misspelt key added here. One dry run
must name each of them.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from cof_plugins.cli import main
from cof_plugins.llamafactory import packages

from .conftest import RECIPES

PAPER = RECIPES / "paper_qwen2_5_vl_7b_lora.yaml"


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _args(recipe: Path, tiny_model, cof_data, tmp_path, *extra: str) -> list[str]:
    return [
        "sft", str(recipe), "--dry-run", f"model_name_or_path={tiny_model}",
        f"dataset_dir=cof:{cof_data}", f"output_dir={tmp_path / 'out'}", *extra,
    ]  # fmt: skip


def test_dry_run_reports_every_problem_with_its_fix(tiny_model, cof_data, tmp_path, capsys):
    code = main(_args(PAPER, tiny_model, cof_data, tmp_path, "lora_rnak=4"))
    err = capsys.readouterr().err
    assert code == 1
    assert "does not know the key(s) 'lora_rnak'" in err and "did you mean lora_rank" in err
    raw = {"enable_liger_kernel": True, "deepspeed": "cof:zero3"}
    for package in packages.missing(raw):
        assert package.pip in err, f"{package.name} missing but not named with its pip command"
    if not _cuda():
        assert "bf16: true needs a CUDA GPU" in err
    assert "checked" not in err


def test_dry_run_passes_a_recipe_this_machine_can_train(tiny_model, cof_data, tmp_path, capsys):
    code = main(_args(RECIPES / "tiny_cpu.yaml", tiny_model, cof_data, tmp_path))
    out = capsys.readouterr().out
    assert code == 0 and "dry run passed" in out


def test_deepspeed_recipes_launch_and_check_under_torchrun():
    from cof_plugins.llamafactory.train import Topology, needs_torchrun, torchrun_command

    assert needs_torchrun({"deepspeed": "/x/zero3.json"}, Topology())
    assert not needs_torchrun({}, Topology())
    command = torchrun_command(Path("c.yaml"), Topology(), "--check")
    assert command[-3:] == ["cof_plugins.llamafactory.launch", "--check", "c.yaml"]


def test_parser_errors_are_explained():
    from importlib.metadata import PackageNotFoundError

    from cof_plugins.llamafactory.dry_run import DROP, explain

    finding, aside = explain(
        PackageNotFoundError("The 'liger-kernel' distribution was not found and is required")
    )
    assert finding.fix == packages.by_name("liger-kernel").pip
    assert aside == {"enable_liger_kernel": DROP}
    finding, aside = explain(ValueError("Please use `FORCE_TORCHRUN=1` to launch DeepSpeed."))
    assert "torchrun" in finding.message and aside == {"deepspeed": DROP}
    finding, aside = explain(ValueError("cutoff_len must be positive"))
    assert "cutoff_len must be positive" in finding.message and aside is None


def test_preview_of_a_bf16_recipe_without_a_gpu_is_a_clear_error(
    tiny_model, cof_data, tmp_path, capsys
):
    if _cuda():
        pytest.skip("this machine has a GPU: bf16 parses")
    args = _args(PAPER, tiny_model, cof_data, tmp_path, "deepspeed=null")
    args[args.index("--dry-run")] = "--preview=1"
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and "bf16=false use_cpu=true" in err and "Traceback" not in err


def test_packages_agree_with_the_sft_gpu_extra():
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    extra = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]["sft-gpu"]
    assert sorted(extra) == sorted(
        p.requirement for p in packages.PACKAGES if p.key != "flash_attn"
    )


def test_doctor_names_what_each_recipe_needs_with_the_pip_command(capsys):
    main(["doctor"])
    out = capsys.readouterr().out
    assert "liger-kernel" in out
    for package in packages.PACKAGES:
        if not package.installed() and package.key != "flash_attn":
            assert f"{package.key} -> {package.pip}" in out
