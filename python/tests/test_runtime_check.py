"""The runtime check (`envs.registry.check_benchmark`, `bridge.check_benchmarks`): a benchmark
is loaded and one environment of it built and stepped, and a failure is told apart as
missing (not installed), broken (installed and failing) or invalid (a wrong benchmark)."""

from __future__ import annotations

import importlib.util
import json

import gymnasium as gym
import pytest

import bandit_env
from amago2 import bridge
from amago2.errors import ConfigError
from amago2.envs import metaworld, registry

BROKEN_ID = "NeedsAMissingSimulator-v0"


def _needs_a_missing_simulator():
    import missing_simulator  # noqa: F401 - the point: this module does not exist

    raise AssertionError("unreachable")


if BROKEN_ID not in gym.registry:
    gym.register(BROKEN_ID, entry_point=_needs_a_missing_simulator)


def test_every_built_in_benchmark_either_runs_or_is_not_installed():
    for name in registry.BENCHMARKS:
        check = registry.check_benchmark(name)
        assert check["state"] in ("ok", "missing"), (name, check["error"])
        if check["state"] == "ok":
            assert check["error"] is None and check["task"] and None not in check["packages"].values()
        else:
            assert None in check["packages"].values() and check["error"]


def test_a_user_defined_set_builds_every_one_of_its_tasks():
    definition = {"tasks": [{"env_id": "CartPole-v1"}, {"env_id": bandit_env.ENV_ID, "name": "bandit"}]}
    check = registry.check_benchmark("mine", definition)
    assert check["state"] == "ok" and check["task"] == "bandit"
    assert set(check["packages"]) == {"gymnasium"}

    broken = registry.check_benchmark("mine", {"tasks": [{"env_id": "CartPole-v1"}, {"env_id": BROKEN_ID}]})
    assert broken["state"] == "broken" and broken["task"] == BROKEN_ID
    assert broken["error"] == "ModuleNotFoundError: No module named 'missing_simulator'"


@pytest.mark.parametrize("name, definition, message", [
    ("nope", None, "unknown benchmark 'nope'"),
    ("mine", {"tasks": [{"env_id": "NoSuchEnv-v0"}]}, "'NoSuchEnv-v0' is not a registered Gymnasium environment"),
    ("mine", {"tasks": []}, "must list at least one task"),
])
def test_a_wrong_benchmark_is_invalid_with_its_config_error(name, definition, message):
    check = registry.check_benchmark(name, definition)
    assert check["state"] == "invalid" and message in check["error"]


def test_an_import_error_with_every_package_installed_is_raised_as_it_is(monkeypatch):
    monkeypatch.setitem(registry.BENCHMARKS, "needs-a-module",
                        registry.BenchmarkEntry("no_such_module", "make", packages=("gymnasium",)))
    with pytest.raises(ModuleNotFoundError):
        registry.get_benchmark("needs-a-module")
    assert registry.check_benchmark("needs-a-module")["state"] == "broken"

    monkeypatch.setitem(registry.BENCHMARKS, "needs-a-dist",
                        registry.BenchmarkEntry("no_such_module", "make", packages=("no-such-dist",)))
    with pytest.raises(ConfigError, match="install it with: pip install no-such-dist"):
        registry.get_benchmark("needs-a-dist")
    check = registry.check_benchmark("needs-a-dist")
    assert check["state"] == "missing" and check["packages"] == {"no-such-dist": None}


@pytest.mark.skipif(importlib.util.find_spec("procgen") is not None, reason="procgen is installed here")
def test_procgen_outside_its_runtime_is_missing_with_the_install_hint():
    check = registry.check_benchmark("procgen")
    assert check["state"] == "missing" and "amago2 setup --procgen" in check["error"]


@pytest.mark.skipif(importlib.util.find_spec("metaworld") is None, reason="metaworld is not installed")
def test_ml45_is_checked_on_one_class_without_building_the_full_goal_sets(monkeypatch):
    asked, build = [], metaworld.goal_sets

    def recording(train, test):
        asked.append((train, test))
        return build(train, test)

    monkeypatch.setattr(metaworld, "goal_sets", recording)
    check = registry.check_benchmark("ml45")
    train, _ = metaworld.ml45_classes()
    assert check["state"] == "ok" and check["task"] == train[0]
    assert asked == [((train[0],), ())], "the full ML45 goal sets take ~20 s to build; the check must not"


def test_check_benchmarks_answers_in_the_order_asked_and_all_means_every_built_in():
    asked = {"benchmarks": [{"name": "nope"}, {"name": "gym-mini"}]}
    answered = json.loads(bridge.check_benchmarks(json.dumps(asked)))
    assert [(c["name"], c["state"]) for c in answered] == [("nope", "invalid"), ("gym-mini", "ok")]
    every = json.loads(bridge.check_benchmarks(json.dumps({"benchmarks": "all"})))
    assert [c["name"] for c in every] == sorted(registry.BENCHMARKS)
