"""What refuses a resume, and the overrides the refusal offers to undo it."""

import shlex

import pytest

from hypersweep.config_diff import ABSENT, describe, differences, undoing_overrides, with_target_defaults


def test_equal_configs_have_no_difference(compose_config):
    config = compose_config("experiment=smoke")
    assert differences(config, compose_config("experiment=smoke")) == []


def test_a_setting_added_since_the_sweep_started_is_no_difference_at_its_default(compose_config):
    saved, new = compose_config("experiment=smoke"), compose_config("experiment=smoke")
    del saved["checkpoint"]["seconds"]  # as in a sweep started before the setting existed
    assert differences(saved, new) == []
    new["checkpoint"]["seconds"] = 10
    assert differences(saved, new) == [("checkpoint.seconds", 0, 10)]


def test_a_model_or_data_setting_added_since_at_its_targets_default_is_no_difference(compose_config):
    # The yaml gained data.image_size: 8, load_digits's own default, after the sweep started.
    saved, new = compose_config("experiment=digits_cnn"), compose_config("experiment=digits_cnn")
    del saved["data"]["image_size"], saved["model"]["norm"]
    assert differences(with_target_defaults(saved, new), new) == []
    new["data"]["image_size"], new["model"]["norm"] = 16, "batch"
    assert differences(with_target_defaults(saved, new), new) == [
        ("data.image_size", 8, 16), ("model.norm", "none", "batch")]
    # Another target's defaults say nothing of what the saved one ran with.
    new["model"] = {**new["model"], "_target_": "trainables.models.MLP"}
    assert ("model.norm", ABSENT, "batch") in differences(with_target_defaults(saved, new), new)


def test_keys_only_one_side_has_are_named_absent():
    saved, new = {"model": {"depth": 2}}, {"model": {"width": 3}}
    assert differences(saved, new) == [("model.depth", 2, ABSENT), ("model.width", ABSENT, 3)]
    assert describe(differences(saved, new)) == "model.depth: 2 -> (not set), model.width: (not set) -> 3"
    assert undoing_overrides(differences(saved, new)) == "+model.depth=2 '~model.width'"


def test_many_differences_are_counted_and_get_no_overrides():
    saved, new = {f"k{i}": i for i in range(6)}, {f"k{i}": -i - 1 for i in range(6)}
    assert describe(differences(saved, new)).endswith("k3: 3 -> -4 and 2 more")
    assert undoing_overrides(differences(saved, new)) is None


@pytest.mark.parametrize(("saved_overrides", "launch_overrides"), [
    (("num_samples=9", "optim.lr=1e-05", "optim.name=sgd"), ()),
    (("train.patience=3", "checkpoint.seconds=2.5", "tensorboard=false"), ("seed=4",)),
    (("name='a run: 1'", "space.train.batch_size.values=[8,16]", "+model.extra=true"), ()),
    (("data.val_fraction=0.3", "optim.schedule=cosine"), ("+model.extra=1", "pbt_schedule=[]")),
])
def test_the_offered_overrides_bring_the_launch_back_to_the_saved_sweep(compose_config, saved_overrides,
                                                                        launch_overrides):
    # Hydra's own parser reads the overrides back: quoting, lists, booleans, added and removed keys.
    saved = compose_config("experiment=smoke", *saved_overrides)
    launched = compose_config("experiment=smoke", *launch_overrides)
    fixes = undoing_overrides(differences(saved, launched))
    assert fixes
    assert compose_config("experiment=smoke", *launch_overrides, *shlex.split(fixes)) == saved
