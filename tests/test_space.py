"""The search-space conversion, pinned by tables: specs in, dimensions and Tune domains out."""

import pytest
from ray import tune

from hypersweep.errors import ConfigError
from schedulers.space import Dimension, baseline_point, discrete_combinations, param_space, parse_space


def _config(spec: dict, value=0.5) -> dict:
    return {"optim": {"x": value}, "space": {"optim": {"x": spec}}}


@pytest.mark.parametrize(
    ("spec", "value", "domain_type", "sampler"),
    [
        ({"type": "uniform", "low": 0, "high": 1}, 0.5, tune.search.sample.Float, "Uniform"),
        ({"type": "loguniform", "low": 1e-4, "high": 0.1}, 0.01, tune.search.sample.Float, "LogUniform"),
        ({"type": "int", "low": 1, "high": 4}, 2, tune.search.sample.Integer, "Uniform"),
        ({"type": "int", "low": 8, "high": 512, "log": True}, 64, tune.search.sample.Integer, "LogUniform"),
        ({"type": "choice", "values": ["a", "b"]}, "a", tune.search.sample.Categorical, "Uniform"),
    ],
)
def test_valid_specs_become_tune_domains(spec, value, domain_type, sampler):
    (dim,) = parse_space(_config(spec, value))
    domain = dim.to_tune()
    assert isinstance(domain, domain_type)
    assert type(domain.get_sampler()).__name__.lstrip("_") == sampler


def test_int_range_includes_its_upper_bound():
    (dim,) = parse_space(_config({"type": "int", "low": 1, "high": 3}, 2))
    samples = {dim.to_tune().sample() for _ in range(300)}
    assert samples == {1, 2, 3}
    assert dim.size == 3


def test_grid_becomes_grid_search_and_choices_can_be_gridded():
    (grid,) = parse_space(_config({"type": "grid", "values": [1, 2]}, 1))
    assert grid.to_tune() == {"grid_search": [1, 2]}
    choice = Dimension("optim.x", "choice", values=("a", "b"))
    assert choice.to_tune(as_grid=True) == {"grid_search": ["a", "b"]}


@pytest.mark.parametrize(
    ("spec", "value", "message"),
    [
        ({"type": "uniform", "low": 1, "high": 1}, 1, "space.optim.x: low (1) must be below high (1)"),
        ({"type": "uniform", "low": 2, "high": 1}, 1.5, "low (2) must be below high (1)"),
        ({"type": "loguniform", "low": 0, "high": 1}, 0.5, "space.optim.x.low: a log scale needs low > 0"),
        ({"type": "int", "low": -1, "high": 4, "log": True}, 1, "a log scale needs low > 0"),
        ({"type": "int", "low": 1.5, "high": 4}, 2, "space.optim.x.low: an int range needs whole numbers"),
        ({"type": "choice", "values": []}, 1, "space.optim.x.values: needs a non-empty list"),
        ({"type": "normal", "low": 0, "high": 1}, 0.5, "space.optim.x.type: unknown type 'normal'"),
        ({"type": "uniform", "low": 0, "hi": 1}, 0.5, "space.optim.x: unknown field(s) hi"),
        ({"type": "uniform", "low": "a", "high": 1}, 0.5, "space.optim.x.low: needs a finite number"),
        ({"type": "choice", "values": [1, 2], "kind": "magic"}, 1, "x.kind: 'magic' is not a kind"),
        ({"type": "choice", "values": [1, 2]}, 3, "the default optim.x=3 is outside choice [1, 2]"),
        ({"type": "uniform", "low": 0, "high": 1}, 2.0, "the default optim.x=2.0 is outside uniform 0..1"),
        (3, 3, "space.optim.x: expected a spec"),
    ],
)
def test_bad_specs_name_the_key(spec, value, message):
    with pytest.raises(ConfigError) as raised:
        parse_space(_config(spec, value))
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_path_missing_from_the_config_is_refused():
    config = {"optim": {"lr": 0.1}, "space": {"optim": {"lrr": {"type": "uniform", "low": 0, "high": 1}}}}
    with pytest.raises(ConfigError, match=r"space\.optim\.lrr: 'optim\.lrr' is not in the config"):
        parse_space(config)


def test_an_empty_space_is_refused():
    with pytest.raises(ConfigError, match="space: no hyperparameter to tune"):
        parse_space({"optim": {"lr": 0.1}, "space": {}})


def test_default_space_sizes(compose_config):
    dims = parse_space(compose_config())
    assert len(dims) == 7
    # batch 4 x layers 4 x width 4 x dropout 4 x optimizer 3 x activation 3; lr is continuous.
    assert discrete_combinations(dims) == 2304
    assert [d.path for d in dims if not d.is_discrete] == ["optim.lr"]


def test_param_space_keeps_the_config_and_puts_domains_at_their_paths(compose_config):
    config = compose_config()
    dims = parse_space(config)
    space = param_space(config, dims)
    assert isinstance(space["optim"]["lr"], tune.search.sample.Float)
    assert isinstance(space["model"]["activation"], tune.search.sample.Categorical)
    assert space["optim"]["weight_decay"] == config["optim"]["weight_decay"]
    assert config["optim"]["lr"] == 0.001, "the config itself is left untouched"
    assert baseline_point(config, dims)["optim"] == {"lr": 0.001, "name": "adam"}
