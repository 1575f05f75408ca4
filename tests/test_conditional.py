"""Conditional hyperparameters: drawn only where their condition holds, checked before Ray starts."""

import json
import random
import re

import pytest

from hypersweep.config import validate
from hypersweep.errors import ConfigError
from schedulers.searchers import build_search
from schedulers.space import param_space, tuned_values, with_inactive_defaults
from tests.conftest import run_launch

MOMENTUM_LABEL = "optim/momentum[optim.name=sgd]"
WARMUP_LABELS = {"optim/warmup_epochs[optim.schedule=cosine]",
                 "optim/warmup_epochs[optim.schedule=onecycle]"}


@pytest.fixture
def transformer(compose_config) -> dict:
    return compose_config("experiment=mnist1d_transformer")


def _drawn(config: dict, count: int) -> tuple[list[dict], object]:
    """`count` configs from the experiment's own hyperopt searcher, each told a made-up result
    (so TPE takes over after n_initial_points), and the searcher."""
    searcher = build_search(config, validate(config)).searcher  # inside Ray's trial-making wrapper
    rng = random.Random(0)
    drawn = []
    for index in range(count):
        suggestion = searcher.suggest(f"t{index}")
        drawn.append(suggestion)
        searcher.on_trial_complete(f"t{index}", {config["metric"]: rng.random()})
    return drawn, searcher


def test_hyperopt_draws_a_conditional_value_only_where_its_condition_holds(transformer):
    drawn, searcher = _drawn(transformer, 40)  # 8 random starts, then TPE
    # The first trial is the config's defaults: Adam, so no momentum; cosine, so its warmup.
    assert drawn[0]["optim"] == {key: transformer["optim"][key]
                                 for key in ("lr", "name", "weight_decay", "schedule", "warmup_epochs")}
    names = {d["optim"]["name"] for d in drawn}
    schedules = {d["optim"]["schedule"] for d in drawn}
    assert names == {"adam", "sgd"} and schedules == {"none", "cosine", "onecycle"}
    for suggestion in drawn:
        optim = suggestion["optim"]
        assert ("momentum" in optim) == (optim["name"] == "sgd")
        assert ("warmup_epochs" in optim) == (optim["schedule"] in ("cosine", "onecycle"))
        if "momentum" in optim:
            assert 0.8 <= optim["momentum"] <= 0.99
    # What TPE learns from: a momentum value for each SGD trial, none for the others.
    for trial, suggestion in zip(searcher._hpopt_trials.trials, drawn, strict=True):
        values = {label: v for label, v in trial["misc"]["vals"].items() if v}
        assert (MOMENTUM_LABEL in values) == (suggestion["optim"]["name"] == "sgd")
        assert len(WARMUP_LABELS & values.keys()) == (suggestion["optim"]["schedule"] != "none")


def test_an_unconditional_space_is_drawn_as_before(compose_config):
    config = compose_config()  # the default sweep: no conditions
    dims = validate(config)
    drawn, _ = _drawn(config, 12)
    for suggestion in drawn:
        for dim in dims:
            section, key = dim.path.split(".")
            assert dim.contains(suggestion[section][key]), (dim.path, suggestion)


def test_putting_a_choice_back_at_its_default_switches_off_what_depends_on_it(transformer):
    # A chain: the schedule is tuned for SGD only, and warmup for a decaying schedule only.
    transformer["optim"]["schedule"] = "none"
    transformer["space"]["optim"]["schedule"]["when"] = {"optim.name": "sgd"}
    space = param_space(transformer, validate(transformer))
    trial = {**space, "optim": {**transformer["optim"], "name": "adam", "schedule": "onecycle",
                                "warmup_epochs": 5}}
    # Adam: the schedule goes back to its default ("none"), and then warmup no longer matters.
    fixed = with_inactive_defaults(trial)
    assert (fixed["optim"]["schedule"], fixed["optim"]["warmup_epochs"]) == ("none", 2)
    assert {"optim.schedule", "optim.warmup_epochs"}.isdisjoint(tuned_values(fixed))
    assert trial["optim"]["schedule"] == "onecycle", "the trial's own config is left as it was"


@pytest.mark.parametrize(("change", "message"), [
    ({"momentum": {"when": {"optim.lr": 0.01}}},
     "space.optim.momentum.when.optim.lr: a condition needs a choice to depend on"),
    ({"momentum": {"when": {"optim.name": ["sgd", "rmsprop"]}}},
     "space.optim.momentum.when.optim.name: ['sgd', 'rmsprop'] are not all values of optim.name"),
    ({"momentum": {"when": {"train.max_epochs": 5}}},
     "space.optim.momentum.when.train.max_epochs: train.max_epochs is fixed at 20, so "
     "optim.momentum would never matter"),
    ({"name": {"when": {"optim.schedule": "cosine"}},
      "schedule": {"when": {"optim.name": ["adam", "sgd"]}}},
     "space.optim.name.when: the conditions go round in a circle "
     "(optim.name -> optim.schedule -> optim.name)"),
    ({"momentum": {"when": {"optim.name": "sgd", "optim.schedule": "cosine"}}},
     "space.optim.momentum.when: hyperopt draws a conditional value inside one choice's branch"),
])
def test_a_condition_that_cannot_work_fails_in_one_line(transformer, change, message):
    for key, fields in change.items():
        transformer["space"]["optim"][key].update(fields)
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(transformer)


def test_grid_search_refuses_a_conditional_dimension(transformer):
    transformer["search"]["name"] = "grid"
    transformer["space"]["optim"]["lr"] = {"type": "choice", "values": [3.0e-4, 3.0e-3]}
    transformer["space"]["optim"]["weight_decay"] = {"type": "choice", "values": [1.0e-4]}
    transformer["space"]["optim"]["momentum"] = {"type": "choice", "values": [0.9],
                                                 "when": {"optim.name": "sgd"}}
    with pytest.raises(ConfigError, match=re.escape(
            "space.optim.warmup_epochs.when: a grid would run the same trial once for each")):
        validate(transformer)


@pytest.mark.parametrize("search", ["random", "hyperopt"])
def test_a_trial_trains_with_the_default_of_every_inactive_value(tmp_path, search):
    done = run_launch("experiment=mnist1d_transformer", f"search={search}", "num_samples=6", "seed=4",
                      "train.max_epochs=2", "scheduler.grace_period=1", "data.num_samples=1000",
                      "model.width=32", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    experiment = tmp_path / "runs" / "mnist1d_transformer"
    summary = json.loads((experiment / "summary.json").read_text())
    defaults = {"optim.momentum": 0.9, "optim.warmup_epochs": 2}
    assert len(summary["trials"]) == 6
    for trial in summary["trials"]:
        rows = [json.loads(line) for line in open(f"{trial['path']}/result.json")]
        used = rows[0]["config"]["optim"]  # the config the trial trained with, as Ray gave it
        assert ("optim.momentum" in trial["tuned"]) == (used["name"] == "sgd")
        assert ("optim.warmup_epochs" in trial["tuned"]) == (used["schedule"] != "none")
        if used["name"] != "sgd":
            assert used["momentum"] == defaults["optim.momentum"]
        if used["schedule"] == "none":
            assert used["warmup_epochs"] == defaults["optim.warmup_epochs"]


def test_an_experiment_saved_when_random_search_lived_in_conditional_still_unpickles_it():
    # Its tuner.pkl names the class by the module it lived in then; resuming unpickles it.
    import pickle

    from schedulers.active_variants import ActiveOnlyVariants

    assert pickle.loads(b"cschedulers.conditional\nActiveOnlyVariants\n.") is ActiveOnlyVariants
