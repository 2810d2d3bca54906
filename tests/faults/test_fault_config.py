"""Recipes, overrides and endpoints: syntax errors by line, wrong types by key, no fallbacks,
finite timeouts, and credentials that never reach a report, an error or a log."""

from __future__ import annotations

import logging

import pytest

from cof_plugins.assets import recipes_dir

BROKEN = "foo: [1, 2\nbar: 3\n"  # an unclosed flow list: line 2, column 4


def _broken_copy(tmp_path, kind: str):
    path = tmp_path / f"{kind}_broken.yaml"
    text = (recipes_dir() / kind / "tiny_cpu.yaml").read_text()
    path.write_text(text + BROKEN)
    return path, text.count("\n") + 2


def test_sft_recipe_syntax_error_names_file_line_and_column(tmp_path):
    from cof_plugins.llamafactory.config import RecipeError, load_recipe

    path, line = _broken_copy(tmp_path, "sft")
    with pytest.raises(RecipeError, match=rf"{path}:{line}:4: not valid YAML: expected ','"):
        load_recipe(path)


def test_rl_recipe_syntax_error_names_file_line_and_column(tmp_path):
    from cof_plugins.verl.recipe import RecipeError, find_recipe

    path, line = _broken_copy(tmp_path, "rl")
    with pytest.raises(RecipeError, match=rf"{path}:{line}:4: not valid YAML: expected ','"):
        find_recipe(path)


@pytest.mark.parametrize("given", ["/nonexistent/dir/tiny_cpu.yaml", "tiny_cpu.yaml", "x/tiny_cpu"])
def test_a_recipe_path_that_does_not_exist_never_falls_back(given, tmp_path, monkeypatch):
    from cof_plugins.verl.recipe import RecipeError, find_recipe

    monkeypatch.chdir(tmp_path)
    with pytest.raises(RecipeError, match="does not exist"):
        find_recipe(given)
    assert find_recipe("tiny_cpu") == (recipes_dir() / "rl" / "tiny_cpu.yaml").resolve()


def test_cof_validate_refuses_a_missing_recipe_path(cof):
    result = cof("validate", "/nonexistent/dir/tiny_cpu.yaml")
    assert result.code == 1 and "recipe file '/nonexistent/dir/tiny_cpu.yaml' does not exist" in (
        result.err
    )
    assert "valid" not in result.out


def test_sft_missing_recipe_path_is_an_error(tmp_path):
    from cof_plugins.llamafactory.config import RecipeError, load_recipe

    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "nowhere" / "tiny_cpu.yaml")


def test_rl_override_of_the_wrong_type_is_named():
    pytest.importorskip("verl")
    from cof_plugins.verl.recipe import compose_recipe, wrong_types

    overrides = ["actor_rollout_ref.actor.optim.lr=abc", "trainer.val_before_train=maybe"]
    problems = wrong_types(compose_recipe("tiny_cpu", overrides))
    assert problems == [
        "actor_rollout_ref.actor.optim.lr='abc': verl expects a number (default 1e-06)",
        "trainer.val_before_train='maybe': verl expects true or false (default True)",
    ]
    assert wrong_types(compose_recipe("tiny_cpu")) == []


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0"])
def test_judge_check_refuses_a_timeout_that_is_not_finite(value, cof, monkeypatch):
    result = cof("judge", "check", "--url", "http://127.0.0.1:9/v1", "--model", "m",
                 f"--timeout={value}")  # fmt: skip
    assert result.code == 1 and "timeout_s must be a finite number of seconds > 0" in result.out
    monkeypatch.setenv("COF_JUDGE_TIMEOUT", value)
    assert cof("judge", "check", "--url", "http://127.0.0.1:9/v1", "--model", "m").code == 1


SECRETS = ("hunter2", "sk-live-123", "qq-token")


def _with_credentials(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://admin:hunter2@{rest}?api_key=sk-live-123&token=qq-token"


def test_judge_credentials_never_reach_the_report_errors_or_logs(cof, caplog, monkeypatch):
    from cof_plugins.testbed.openai_server import FakeOpenAIServer, error

    monkeypatch.setenv("COF_JUDGE_API_KEY", "sk-live-123")
    caplog.set_level(logging.DEBUG)
    with FakeOpenAIServer(lambda body: error(401), models=("judge",)) as server:
        server.script = [error(401)]
        result = cof("judge", "check", "--url", _with_credentials(server.url), "--model",
                     "judge", "--timeout", "5")  # fmt: skip
    shown = result.text + caplog.text
    assert result.code == 1 and "***" in result.out
    assert not [s for s in SECRETS if s in shown], shown


def test_eval_backend_records_and_errors_hide_credentials():
    from cof_plugins.eval.backends import BackendUnavailable
    from cof_plugins.eval.backends.openai import OpenAIBackend
    from cof_plugins.testbed.openai_server import refused_url

    backend = OpenAIBackend("m", url=_with_credentials(refused_url()), retries=0)
    assert not [s for s in SECRETS if s in str(backend.describe())]
    with pytest.raises(BackendUnavailable) as caught:
        backend._post({"model": "m", "messages": []})
    assert not [s for s in SECRETS if s in str(caught.value)]
    with pytest.raises(BackendUnavailable) as caught:
        OpenAIBackend("m", url="ftp://admin:hunter2@host/v1")
    assert "hunter2" not in str(caught.value)


def test_judge_config_repr_and_url_errors_hide_credentials():
    from cof_plugins.judge import JudgeConfig, JudgeConfigError

    config = JudgeConfig(url="http://admin:hunter2@host/v1", model="m")
    assert "hunter2" not in repr(config)
    with pytest.raises(JudgeConfigError) as caught:
        JudgeConfig(url="host:hunter2@x/v1", model="m").require_endpoint()
    assert "hunter2" not in str(caught.value)


def test_redaction_of_urls_headers_and_tokens():
    from cof_plugins.core.redact import redact_text, redact_url

    assert (
        redact_url("http://u:p@h:8/v1?api_key=k&model=m") == "http://***@h:8/v1?api_key=***&model=m"
    )
    assert redact_url("http://h/v1") == "http://h/v1"
    text = redact_text(
        'POST http://u:p@h/v1 failed; {"Authorization": "Bearer sk-1"} x-api-key: k2'
    )
    assert not [s for s in ("u:p", "sk-1", "k2") if s in text], text
    long = "http://h/?" + " " * 100_000 + "Authorization: " + "a" * 100_000
    assert "a" * 100 not in redact_text(long)  # linear patterns: this returns at once
