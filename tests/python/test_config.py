"""Configs from Python: the forms a config takes, ConfigError, the legacy block, TargetError,
and the engines compiled into the wheel."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

import llm_bench
from conftest import REPO, Cli, closed_port, make_config


def test_the_wheel_links_both_engines() -> None:
    found = llm_bench.engines()
    assert [e.name for e in found] == ["genai-bench", "guidellm", "native"]
    assert all(isinstance(e, llm_bench.EngineInfo) for e in found)
    native = next(e for e in found if e.name == "native")
    assert native.summary
    assert {"synchronous", "concurrent", "sweep"} <= set(native.profiles), native.profiles
    assert {"synthetic", "scenario", "file"} <= set(native.data), native.data
    assert "ttft_ms" in native.metrics, native.metrics


TOML = """
[profile]
kind = "concurrent"
streams = [1, 3]

[constraints]
max_seconds = 2

[data]
kind = "synthetic"
prompt_tokens = 32
output_tokens = 16
approximate = true
"""

YAML = """
profile:
  kind: concurrent
  streams: [1, 3]
constraints:
  max_seconds: 2
data:
  kind: synthetic
  prompt_tokens: 32
  output_tokens: 16
  approximate: true
"""


def test_every_form_of_a_config_gives_the_same_plan(tmp_path: Path) -> None:
    as_dict = make_config(streams=[1, 3], max_seconds=2)
    (tmp_path / "c.toml").write_text(TOML, encoding="utf-8")
    (tmp_path / "c.yaml").write_text(YAML, encoding="utf-8")
    forms: Dict[str, Any] = {
        "dict": as_dict,
        "JSON text": json.dumps(as_dict),
        "TOML text": TOML,
        "YAML text": YAML,
        "path str": str(tmp_path / "c.toml"),
        "PathLike": tmp_path / "c.yaml",
    }
    plans = {name: llm_bench.validate(form, offline=True) for name, form in forms.items()}
    expected = [
        llm_bench.PlannedBenchmark("concurrent streams=1", "prompt_tokens=32,output_tokens=16"),
        llm_bench.PlannedBenchmark("concurrent streams=3", "prompt_tokens=32,output_tokens=16"),
    ]
    for name, plan in plans.items():
        assert isinstance(plan, llm_bench.Plan)
        assert plan.engine == "native", name
        assert plan.benchmarks == expected, name
        assert plan.target_checked is False, f"{name}: the embedded mock is not checked"

    overridden = llm_bench.validate(TOML, overrides=["profile.streams=[5]"], offline=True)
    assert [b.strategy for b in overridden.benchmarks] == ["concurrent streams=5"]
    assert llm_bench.validate(as_dict, engine="native", offline=True).engine == "native"


def config_error(call: Callable[[], Any]) -> llm_bench.ConfigError:
    with pytest.raises(llm_bench.ConfigError) as raised:
        call()
    assert isinstance(raised.value, llm_bench.Error)
    return raised.value


def both(config: Any) -> List[llm_bench.ConfigError]:
    """The ConfigError of run and of validate (offline) on the same config."""
    return [
        config_error(lambda: llm_bench.run(config)),
        config_error(lambda: llm_bench.validate(config, offline=True)),
    ]


def test_a_misspelt_value_names_its_key_and_the_suggestion() -> None:
    config = make_config()
    config["profile"]["kind"] = "concurent"
    for error in both(config):
        assert error.key == "profile.kind"
        assert error.suggestion == "concurrent"
        assert "concurent" in str(error) and error.message == str(error)


def test_an_unknown_key_names_it_and_the_closest_key() -> None:
    config = make_config()
    config["constraints"]["max_secnds"] = 3
    for error in both(config):
        assert error.key == "constraints.max_secnds"
        assert error.suggestion == "constraints.max_seconds"
    top = make_config(targt={"url": "http://127.0.0.1:1"})
    for error in both(top):
        assert error.key == "targt" and error.suggestion == "target"
    in_toml = TOML.replace("max_seconds = 2", "max_seconds = 2\nmax_reqests = 5")
    for error in both(in_toml):
        assert error.key == "constraints.max_reqests"
        assert error.suggestion == "constraints.max_requests"


def test_a_missing_limit_names_max_seconds() -> None:
    config = make_config(max_seconds=None)
    for error in both(config):
        assert error.key == "constraints.max_seconds"
        assert "max_requests" in str(error)


def test_a_bad_override_and_a_bad_file_are_config_errors(tmp_path: Path) -> None:
    error = config_error(
        lambda: llm_bench.validate(TOML, overrides=["profile.kind=concurent"], offline=True)
    )
    assert error.key == "profile.kind" and error.suggestion == "concurrent"
    config_error(lambda: llm_bench.run(str(tmp_path / "missing.toml")))
    (tmp_path / "c.txt").write_text(TOML, encoding="utf-8")
    config_error(lambda: llm_bench.validate(tmp_path / "c.txt", offline=True))
    config_error(lambda: llm_bench.run(make_config(data=["not a row dict"])))


def legacy_block() -> Dict[str, Any]:
    """The autotuner's legacy block (docs/config.md), as it writes it: no target, so the
    embedded mock."""
    return {
        "benchmark": {
            "benchmark_engine": "native",
            "traffic_scenarios": ["D(100,100)", "N(48,8)/(16,4)"],
            "num_concurrency": [1, 4, 8],
            "max_time_per_iteration": 10,
            "max_requests_per_iteration": 100,
            "model_name": "llama-3-8b",
            "model_tokenizer": str(REPO / "data" / "tokenizer"),
            "max_error_rate": 0.1,
        }
    }


def test_the_legacy_block_plans_as_the_cli_does(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps(legacy_block(), indent=2), encoding="utf-8")
    done = cli("validate", "--offline", "--config", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    numbered = re.findall(r"^\s*(\d+)\. (.+?) \[(.+)\]$", done.stdout, re.MULTILINE)
    assert len(numbered) == 6, done.stdout
    assert "engine `native`" in done.stdout

    for form in (legacy_block(), path, json.dumps(legacy_block())):
        plan = llm_bench.validate(form, offline=True)
        assert plan.engine == "native"
        assert [(str(i), b.strategy, b.workload) for i, b in enumerate(plan.benchmarks, 1)] == [
            tuple(line) for line in numbered
        ]
    assert numbered[0][1:] == ("concurrent streams=1", "D(100,100)")


def test_the_legacy_block_refuses_a_key_given_twice() -> None:
    config = legacy_block()
    config["constraints"] = {"max_seconds": 5}
    error = config_error(lambda: llm_bench.validate(config, offline=True))
    assert "max_seconds" in str(error)
    typo = legacy_block()
    typo["benchmark"]["num_concurency"] = [2]
    error = config_error(lambda: llm_bench.validate(typo, offline=True))
    assert error.suggestion is not None and "num_concurrency" in error.suggestion


def test_a_closed_port_raises_target_error() -> None:
    config = make_config(
        max_seconds=2, target={"url": f"http://127.0.0.1:{closed_port()}", "model": "m"}
    )
    for call in (lambda: llm_bench.run(config), lambda: llm_bench.validate(config)):
        with pytest.raises(llm_bench.TargetError) as raised:
            call()
        assert isinstance(raised.value, llm_bench.EngineError)
        assert isinstance(raised.value, llm_bench.Error)
        assert "127.0.0.1" in str(raised.value)
    plan = llm_bench.validate(config, offline=True)
    assert plan.target_checked is False
