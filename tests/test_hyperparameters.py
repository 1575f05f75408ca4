"""The kinds of hyperparameters users tune: schedules, optimizer knobs, early stopping."""

import json
import math
import re
from dataclasses import replace

import pytest
import ray
import torch
from ray import tune
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hypersweep.config import validate
from hypersweep.errors import ConfigError
from schedulers.space import param_space, tuned_values, with_inactive_defaults
from tests.conftest import ENDED_WITHOUT_FAILING, run_launch
from trainables.data import load_digits
from trainables.lr_schedule import ONECYCLE_END, ONECYCLE_START, lr_factor
from trainables.trainable import TorchTrainable, at_chance


@pytest.fixture(scope="module")
def digits():
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield load_digits(seed=0)
    ray.shutdown()


@pytest.fixture(scope="module")
def digits_images(digits):
    return load_digits(seed=0, as_images=True)


@pytest.fixture
def config(compose_config, tmp_path) -> dict:
    return compose_config("experiment=smoke", f"storage_path={tmp_path}", "train.max_epochs=10")


def _factors(optim: dict, epochs: list[float], max_epochs: int = 10) -> list[float]:
    return [round(lr_factor(optim, epoch, max_epochs), 6) for epoch in epochs]


def test_step_halves_the_rate_every_step_epochs():
    step = {"schedule": "step", "step_epochs": 2, "step_gamma": 0.5}
    assert _factors(step, [0.5, 1.99, 2, 3.9, 4, 9]) == [1, 1, 0.5, 0.5, 0.25, 0.0625]


def test_warmup_rises_linearly_then_cosine_decays_to_zero_at_the_last_epoch():
    cosine = {"schedule": "cosine", "warmup_epochs": 2}
    assert _factors(cosine, [0.5, 1, 2, 6, 10]) == [0.25, 0.5, 1, 0.5, 0]
    assert _factors({"schedule": "none", "warmup_epochs": 4}, [1, 4, 8]) == [0.25, 1, 1]


def test_one_cycle_starts_low_peaks_after_the_rise_and_ends_near_zero():
    onecycle = {"schedule": "onecycle", "warmup_epochs": 0}
    start, peak, end = (lr_factor(onecycle, e, 10) for e in (0, 3, 10))
    assert (start, peak) == (pytest.approx(ONECYCLE_START), 1.0)
    assert end == pytest.approx(ONECYCLE_END)
    rising = [lr_factor(onecycle, e / 4, 10) for e in range(13)]
    falling = [lr_factor(onecycle, 3 + e / 4, 10) for e in range(29)]
    assert rising == sorted(rising) and falling == sorted(falling, reverse=True)
    assert lr_factor({"schedule": "onecycle", "warmup_epochs": 5}, 5, 10) == 1.0


def test_the_reported_learning_rate_follows_the_schedule(digits, config):
    config["optim"].update(schedule="step", step_epochs=2, step_gamma=0.1, lr=0.01)
    trainable = tune.with_parameters(TorchTrainable, data=digits)(config=config)
    rates = [trainable.train()["lr"] for _ in range(5)]
    assert rates == pytest.approx([0.01, 0.001, 0.001, 0.0001, 0.0001])


def test_adam_betas_come_from_the_config(digits, config):
    config["optim"].update(beta1=0.8, beta2=0.95)
    trainable = tune.with_parameters(TorchTrainable, data=digits)(config=config)
    assert trainable.learner.optimizer.param_groups[0]["betas"] == (0.8, 0.95)


def test_patience_stops_a_flat_trial_after_exactly_that_many_reports(digits, config):
    # A rate so small that the weights, and so the validation accuracy, never move.
    config["optim"]["lr"] = 1e-12
    config["train"]["patience"] = 3
    config["train"]["chance_patience"] = 0  # an untrained model may score as a uniform guess
    trainable = tune.with_parameters(TorchTrainable, data=digits)(config=config)
    results = [trainable.train() for _ in range(4)]
    assert len({r["val_acc"] for r in results}) == 1
    assert [r["done"] for r in results] == [False, False, False, True]
    assert trainable.outcome() == "stopped early"


class ImprovingEveryReport(TorchTrainable):
    """Reports a validation accuracy that rises every epoch, whatever the training does."""

    def _evaluate(self, split: str) -> tuple[float, float]:
        loss, accuracy = super()._evaluate(split)
        return loss, (self.epoch / 100 if split == "val" else accuracy)


def test_patience_never_stops_a_trial_that_still_improves(digits, config):
    config["train"]["patience"] = 1
    trainable = tune.with_parameters(ImprovingEveryReport, data=digits)(config=config)
    results = [trainable.train() for _ in range(10)]
    assert [r["done"] for r in results] == [False] * 9 + [True]
    assert trainable.outcome() == "finished"
    assert math.isclose(results[-1]["val_acc"], 0.1)


GUESS = (math.log(10) + 0.01, 0.10)  # a digits model's validation (loss, accuracy) at chance
OVERCONFIDENT = (2.98, 0.80)  # a high loss from confident mistakes, at a good accuracy
LEARNING = (1.10, 0.70)


def _scored(scores: list[tuple[float, float]]) -> type:
    """TorchTrainable reporting the validation (loss, accuracy) `scores[i]` at its (i+1)-th epoch,
    whatever the training does."""

    class Scored(TorchTrainable):
        def _evaluate(self, split: str) -> tuple[float, float]:
            measured = super()._evaluate(split)
            return scores[self.epoch - 1] if split == "val" else measured

    return Scored


def test_a_score_counts_as_chance_only_when_loss_and_accuracy_are_a_guesses():
    assert at_chance(math.log(10), 0.149, classes=10)
    assert at_chance(2.2995, 0.10, classes=10)  # a model too slow to learn: 0.003 under ln 10
    assert not at_chance(2.2874, 0.106, classes=10)  # a slow starter that went on to 0.66
    assert not at_chance(*OVERCONFIDENT, classes=10)
    assert at_chance(0.70, 0.60, classes=2) and not at_chance(0.70, 0.80, classes=2)


def test_a_trial_stuck_at_chance_diverges_after_exactly_chance_patience_reports(digits, config, tmp_path):
    config["train"]["chance_patience"] = 3
    trainable = tune.with_parameters(_scored([LEARNING] + [GUESS] * 4), data=digits)(config=config)
    results = [trainable.train() for _ in range(4)]
    assert [r["done"] for r in results] == [False, False, False, True]
    assert [r["diverged"] for r in results] == [False, False, False, True]
    assert results[-1]["val_acc"] == -math.inf  # so that no search or scheduler prefers it
    assert trainable.outcome() == "diverged"
    trainable.stop()
    # TensorBoard shows what was measured, the last report included.
    [run] = (tmp_path / config["name"] / "tensorboard").iterdir()
    board = EventAccumulator(str(run))
    board.Reload()
    assert [(e.step, round(e.value, 2)) for e in board.Scalars("val_acc")] == [
        (1, LEARNING[1]), (2, GUESS[1]), (3, GUESS[1]), (4, GUESS[1])]


def test_under_pbt_a_trial_at_chance_goes_on_to_be_copied_over(digits, config):
    config["scheduler"] = {**config["scheduler"], "name": "pbt", "mutable": ["optim.lr"]}
    config["train"]["chance_patience"] = 3
    trainable = tune.with_parameters(_scored([GUESS] * 6), data=digits)(config=config)
    assert not any(trainable.train()["done"] for _ in range(6))


def test_chance_patience_counts_reports_in_a_row_and_zero_never_stops(digits, config):
    config["train"]["chance_patience"] = 2
    scores = [GUESS, LEARNING, GUESS, OVERCONFIDENT, GUESS, GUESS]
    trainable = tune.with_parameters(_scored(scores), data=digits)(config=config)
    assert [trainable.train()["done"] for _ in range(6)] == [False] * 5 + [True]
    config["train"]["chance_patience"] = 0
    trainable = tune.with_parameters(_scored([GUESS] * 10), data=digits)(config=config)
    assert [trainable.train()["done"] for _ in range(10)] == [False] * 9 + [True]
    assert trainable.outcome() == "finished"


def test_a_checkpoint_keeps_the_reports_at_chance(digits, config, tmp_path):
    config["train"]["chance_patience"] = 3
    scored = tune.with_parameters(_scored([GUESS] * 3), data=digits)
    first = scored(config=config)
    assert [first.train()["done"] for _ in range(2)] == [False, False]
    first.save_checkpoint(str(tmp_path))
    second = scored(config=config)
    second.load_checkpoint(str(tmp_path))
    assert second.train()["diverged"]


def test_a_rate_far_too_high_ends_as_diverged_within_chance_patience_reports(digits, config):
    # Real training: Adam at a rate of 1 collapses the MLP to one answer, a finite loss.
    config["optim"].update(name="adam", lr=1.0)
    config["train"]["chance_patience"] = 3
    trainable = tune.with_parameters(TorchTrainable, data=digits)(config=config)
    results = [trainable.train()]
    while not results[-1]["done"]:
        results.append(trainable.train())
    assert len(results) <= 4 and results[-1]["diverged"]
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["val_loss"]) for r in results)


def test_a_model_too_slow_to_learn_ends_as_diverged_within_chance_patience_reports(digits, config):
    # Real training: at a rate of 1e-4, SGD leaves a deep net scoring as a guess, its loss
    # drifting a few thousandths under ln 10.
    config["model"].update(hidden_layers=3, hidden_units=256, dropout=0.0)
    config["optim"].update(name="sgd", lr=1e-4)
    config["train"]["batch_size"] = 16
    config["train"]["chance_patience"] = 3
    trainable = tune.with_parameters(TorchTrainable, data=digits)(config=config)
    results = [trainable.train() for _ in range(3)]
    assert [r["done"] for r in results] == [False, False, True] and results[-1]["diverged"]
    losses = [r["val_loss"] for r in results]
    assert min(losses) < math.log(10) and all(math.isfinite(loss) for loss in losses), losses


def test_a_tuned_image_size_trains_the_cnn_on_its_own_resized_digits(digits_images, compose_config,
                                                                      tmp_path):
    shared = replace(digits_images, source={"_target_": "trainables.data.load_digits", "val_fraction": 0.2,
                                            "test_fraction": 0.2, "as_images": True, "image_size": 8})
    config = compose_config("experiment=digits_cnn", f"storage_path={tmp_path}", "data.image_size=16")
    trainable = tune.with_parameters(TorchTrainable, data=shared)(config=config)
    assert {name: tuple(x.shape[1:]) for name, (x, _) in trainable.learner.data.items()} == {
        "train": (1, 16, 16), "val": (1, 16, 16), "test": (1, 16, 16)}
    assert trainable.train()["val_acc"] > 0.5


def test_each_initialization_scheme_sets_the_weights_it_names():
    from trainables.models import MLP

    def first_layer(init: str) -> torch.nn.Linear:
        torch.manual_seed(0)
        return MLP((256,), 10, hidden_layers=1, hidden_units=128, init=init).net[1]

    torch_own = first_layer("torch")
    assert torch_own.bias.abs().sum() > 0  # torch's own, left as it is
    orthogonal = first_layer("orthogonal").weight.detach()
    assert torch.allclose(orthogonal @ orthogonal.T, torch.eye(128), atol=1e-5)
    kaiming = first_layer("kaiming")
    assert kaiming.weight.std().item() == pytest.approx(math.sqrt(2 / 256), rel=0.05)
    xavier = first_layer("xavier")
    assert xavier.weight.abs().max().item() <= math.sqrt(6 / (256 + 128))
    assert xavier.weight.std().item() == pytest.approx(math.sqrt(2 / (256 + 128)), rel=0.05)
    assert all(layer.bias.abs().sum() == 0 for layer in (kaiming, xavier))
    with pytest.raises(ValueError, match="model.init: unknown initialization 'he'; use one of torch, "):
        first_layer("he")


def test_augmentation_changes_training_batches_and_never_validation_or_test(digits_images,
                                                                            compose_config, tmp_path):
    config = compose_config("experiment=digits_cnn", f"storage_path={tmp_path}", "augment.shift=1",
                            "augment.noise=0.1")
    trainable = tune.with_parameters(TorchTrainable, data=digits_images)(config=config)
    seen: dict[bool, list[torch.Tensor]] = {True: [], False: []}
    trainable.learner.model.register_forward_pre_hook(
        lambda module, args: seen[module.training].append(args[0].clone()))
    trainable.train()
    originals = {tuple(row.flatten().tolist()) for row in trainable.learner.data["train"][0]}
    assert seen[True] and all(tuple(x.flatten().tolist()) not in originals
                              for batch in seen[True] for x in batch)
    evaluated = torch.cat(seen[False])
    data = trainable.learner.data
    assert torch.equal(evaluated, torch.cat([data["val"][0], data["test"][0]]))
    assert torch.equal(data["val"][0], torch.as_tensor(digits_images.x_val))


def test_shifting_flat_features_fails_with_the_fix(digits, config):
    config["augment"]["shift"] = 1
    trainable = tune.with_parameters(TorchTrainable, data=digits)(config=config)
    with pytest.raises(ValueError, match="augment.shift: shifting needs images"):
        trainable.train()


@pytest.mark.parametrize(("norm", "layer"), [("batch", torch.nn.BatchNorm1d),
                                             ("layer", torch.nn.LayerNorm)])
def test_normalization_goes_into_the_mlp(digits, config, norm, layer):
    config["model"]["norm"] = norm
    trainable = tune.with_parameters(TorchTrainable, data=digits)(config=config)
    layers = sum(isinstance(m, layer) for m in trainable.learner.model.modules())
    assert layers == config["model"]["hidden_layers"]
    assert trainable.train()["val_acc"] > 0.5


@pytest.mark.parametrize(("norm", "layer"), [("batch", torch.nn.BatchNorm2d),
                                             ("layer", torch.nn.GroupNorm)])
def test_normalization_goes_into_the_cnn(digits_images, compose_config, tmp_path, norm, layer):
    config = compose_config("experiment=digits_cnn", f"storage_path={tmp_path}", f"model.norm={norm}")
    trainable = tune.with_parameters(TorchTrainable, data=digits_images)(config=config)
    assert sum(isinstance(m, layer) for m in trainable.learner.model.modules()) == 2
    assert trainable.train()["val_acc"] > 0.5


def test_a_conditional_dimension_counts_only_where_its_condition_holds(compose_config):
    config = compose_config("experiment=mnist1d_transformer")
    dims = {d.path: d for d in validate(config)}
    assert dims["optim.momentum"].when == (("optim.name", ("sgd",)),)
    space = param_space(config, list(dims.values()))
    trial = {**space, "optim": {**config["optim"], "name": "adam", "momentum": 0.85}}
    assert "optim.momentum" not in tuned_values(trial)
    assert with_inactive_defaults(trial)["optim"]["momentum"] == config["optim"]["momentum"]
    sgd = {**trial, "optim": {**trial["optim"], "name": "sgd"}}
    assert tuned_values(sgd)["optim.momentum"] == 0.85
    assert with_inactive_defaults(sgd)["optim"]["momentum"] == 0.85


@pytest.mark.parametrize(("when", "message"), [
    ({"optim.nam": "sgd"}, "space.optim.momentum.when: 'optim.nam' is not another value in the config"),
    (["sgd"], "space.optim.momentum.when: needs conditions such as {optim.name: sgd}"),
])
def test_a_bad_condition_fails_in_one_line(compose_config, when, message):
    config = compose_config("experiment=mnist1d_transformer")
    config["space"]["optim"]["momentum"]["when"] = when
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(config)


def test_the_transformer_preset_runs_end_to_end_with_conditional_dimensions(tmp_path):
    done = run_launch("experiment=mnist1d_transformer", "search=random", "num_samples=5", "seed=4",
                      "train.max_epochs=3", "scheduler.grace_period=1", "data.num_samples=2000",
                      cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "runs" / "mnist1d_transformer" / "summary.json").read_text())
    trials = summary["trials"]
    assert len(trials) == 5 and {t["status"] for t in trials} <= ENDED_WITHOUT_FAILING
    by_optimizer = {name: [t for t in trials if t["tuned"]["optim.name"] == name]
                    for name in ("adam", "sgd")}
    assert by_optimizer["adam"] and by_optimizer["sgd"], "seed 4 draws both optimizers"
    assert all("optim.momentum" not in t["tuned"] for t in by_optimizer["adam"])
    assert all(0.8 <= t["tuned"]["optim.momentum"] <= 0.99 for t in by_optimizer["sgd"])
    for trial in trials:
        assert ("optim.warmup_epochs" in trial["tuned"]) == (
            trial["tuned"]["optim.schedule"] in ("cosine", "onecycle"))
    assert summary["best"]["metric"] > 0.3, "better than chance (0.1) after three epochs"


def test_a_tuned_validation_fraction_resplits_but_keeps_the_test_set(digits, compose_config, tmp_path):
    shared = replace(digits, source={"_target_": "trainables.data.load_digits", "val_fraction": 0.2,
                                     "test_fraction": 0.2, "as_images": False})
    config = compose_config("experiment=smoke", f"storage_path={tmp_path}", "data.val_fraction=0.3")
    trainable = tune.with_parameters(TorchTrainable, data=shared)(config=config)
    sizes = {name: len(y) for name, (_, y) in trainable.learner.data.items()}
    assert sizes["val"] == round(0.3 * 1797) and sizes["train"] == 1797 - sizes["val"] - sizes["test"]
    assert torch.equal(trainable.learner.data["test"][0], torch.as_tensor(digits.x_test))
    assert trainable.train()["val_acc"] > 0.5
