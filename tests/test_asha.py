"""ASHA keeps the baseline (the config's defaults) to the end, driven over Ray's own Trial objects."""

import pytest

from schedulers.trial_schedulers import build_asha

DEFAULT_LR = 0.001


def _config(keep_baseline: bool, brackets: int = 1, seed: int = 0, shares: str | None = "ray") -> dict:
    """The config of a sweep on one tuned value; `shares` None: saved before bracket_shares existed."""
    config = {"optim": {"lr": DEFAULT_LR}, "seed": seed,
              "space": {"optim": {"lr": {"type": "loguniform", "low": 1e-4, "high": 0.1}}},
              "train": {"max_epochs": 8, "epochs_per_step": 1},
              "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 2,
                            "brackets": brackets, "bracket_shares": shares,
                            "keep_baseline": keep_baseline}}
    if shares is None:
        del config["scheduler"]["bracket_shares"]
    return config


def _trial(trial_id: str, lr: float):
    """A trial as Ray holds it: its config is the whole experiment config with its own values."""
    from ray.tune.experiment import Trial

    return Trial("probe", config={**_config(True), "optim": {"lr": lr}}, stub=True, trial_id=trial_id)


def _run_sweep(keep_baseline: bool, brackets: int = 1, seed: int = 0, count: int = 8) -> dict[str, int]:
    """`count` trials in lockstep, each worse than the one before and the baseline (t0) the worst
    and last at every rung; the epochs each trained."""
    from ray.tune.schedulers import TrialScheduler

    asha = build_asha(_config(keep_baseline, brackets, seed))
    asha.set_search_properties("val_acc", "max")
    lrs = [0.002 * (count - 1 - i) for i in range(count - 1)] + [DEFAULT_LR]
    trials = [_trial(f"t{(i + 1) % count}", lr) for i, lr in enumerate(lrs)]
    for trial in trials:
        asha.on_trial_add(None, trial)
    epochs = {trial.trial_id: 0 for trial in trials}
    running = list(trials)
    for epoch in range(1, 9):
        for trial in list(running):
            epochs[trial.trial_id] = epoch
            accuracy = 0.5 + trial.config["optim"]["lr"] + 0.001 * epoch
            decision = asha.on_trial_result(None, trial, {"training_iteration": epoch,
                                                          "val_acc": accuracy})
            if decision == TrialScheduler.STOP or epoch == 8:
                running.remove(trial)
    return epochs


def test_asha_stops_the_worst_trials_but_keeps_the_baseline_to_the_end():
    kept, stock = _run_sweep(keep_baseline=True), _run_sweep(keep_baseline=False)
    assert stock["t0"] == 1, "stock ASHA stops the worst trial, the baseline, at the first rung"
    assert kept["t0"] == 8
    others = {trial_id: epochs for trial_id, epochs in kept.items() if trial_id != "t0"}
    # Each arrives below the rung's cut so far: only the first and best goes on.
    assert sorted(others.values()) == [1, 1, 1, 1, 1, 1, 8], "the others still go by the rungs"
    assert others == {trial_id: stock[trial_id] for trial_id in others}


def test_the_baseline_is_the_first_trial_at_the_defaults():
    asha = build_asha(_config(keep_baseline=True))
    asha.set_search_properties("val_acc", "max")
    for trial_id, lr in (("a", 0.01), ("b", DEFAULT_LR), ("c", DEFAULT_LR)):
        asha.on_trial_add(None, _trial(trial_id, lr))
    assert asha.baseline == "b", "the first trial at the defaults, and only it"


def test_brackets_come_from_the_seed_and_spare_their_trials_the_earlier_rungs():
    # Rungs at 1, 2, 4 and 8 epochs; with 3 brackets a trial's first rung is at 1, 2 or 4. In
    # lockstep each trial is worse than all before it: the first in a bracket goes on, the
    # others stop at the bracket's first rung.
    runs = {seed: _run_sweep(keep_baseline=False, brackets=3, seed=seed, count=60) for seed in (0, 1)}
    stopped = sorted(epochs for epochs in runs[0].values() if epochs < 8)
    assert set(stopped) == {1, 2, 4} and len(stopped) == 57
    assert stopped.count(1) > stopped.count(2) > stopped.count(4), "most go to the first bracket"
    assert _run_sweep(keep_baseline=False, brackets=3, seed=0, count=60) == runs[0]
    assert runs[1] != runs[0]
    plain = _run_sweep(keep_baseline=False, brackets=1, count=60)
    assert sorted(plain.values()) == [1] * 59 + [8]


def test_hyperband_shares_send_more_trials_to_the_patient_brackets_than_rays():
    # Rungs at 1, 2, 4 and 8 epochs, factor 2, three brackets: Hyperband's rule gives them
    # ceil(3 * 2^2 / 3) : ceil(3 * 2 / 2) : ceil(3 * 1 / 1) = 4:3:3 of the trials, Ray's 67%, 24%, 9%.
    def bracket_fractions(shares: str | None) -> list[float]:
        asha = build_asha(_config(keep_baseline=False, brackets=3, shares=shares))
        asha.set_search_properties("val_acc", "max")
        trials = [_trial(f"t{i}", 0.002) for i in range(2000)]
        for trial in trials:
            asha.on_trial_add(None, trial)
        drawn = [asha._brackets.index(asha._trial_info[trial.trial_id]) for trial in trials]
        return [drawn.count(bracket) / len(trials) for bracket in range(3)]

    assert bracket_fractions("hyperband") == pytest.approx([0.4, 0.3, 0.3], abs=0.03)
    assert bracket_fractions("ray") == pytest.approx([0.665, 0.245, 0.090], abs=0.03)
    assert bracket_fractions(None) == bracket_fractions("ray"), "a sweep saved before the setting ran Ray's"


def test_a_resumed_asha_measures_new_trials_against_the_reports_from_before_the_resume():
    # Ray saves no scheduler state: without the earlier reports, the resumed ASHA's rungs were
    # empty and the first trial to reach one went on, however bad.
    from ray.tune.schedulers import TrialScheduler

    from hypersweep.restored_rungs import replay_reports

    earlier = {f"t{i}": [{"training_iteration": epoch, "val_acc": 0.9 - 0.01 * i}
                         for epoch in (1, 2, 3)] for i in range(4)}

    def resume(with_reports: bool) -> tuple[int, str]:
        asha = build_asha(_config(keep_baseline=False))
        asha.set_search_properties("val_acc", "max")
        recorded = 0
        for trial_id, reports in earlier.items():
            trial = _trial(trial_id, 0.01)
            asha.on_trial_add(None, trial)
            recorded += replay_reports(asha, trial, reports) if with_reports else 0
        late = _trial("late", 0.01)
        asha.on_trial_add(None, late)
        return recorded, asha.on_trial_result(None, late, {"training_iteration": 1, "val_acc": 0.5})

    # Rungs at 1, 2, 4 and 8 epochs: three epochs reach the first two, for each of 4 trials.
    assert resume(with_reports=True) == (8, TrialScheduler.STOP)
    assert resume(with_reports=False) == (0, TrialScheduler.CONTINUE)


def test_a_rung_of_diverged_trials_decides_quietly(recwarn):
    # A diverged trial reports -inf; numpy warned of "invalid value" when a cutoff fell between two.
    from ray.tune.schedulers import TrialScheduler

    asha = build_asha(_config(keep_baseline=False))
    asha.set_search_properties("val_acc", "max")
    trials = [_trial(f"d{i}", 0.05 + i * 0.01) for i in range(3)] + [_trial("ok", 0.01)]
    for trial in trials:
        asha.on_trial_add(None, trial)
    decisions = {trial.trial_id: asha.on_trial_result(None, trial, {
        "training_iteration": 1, "val_acc": 0.9 if trial.trial_id == "ok" else float("-inf")})
        for trial in trials}
    asha.on_trial_complete(None, trials[0], {"training_iteration": 1, "val_acc": float("-inf")})
    assert decisions["ok"] == TrialScheduler.CONTINUE
    assert [decisions[f"d{i}"] for i in range(3)] == [TrialScheduler.CONTINUE] * 3, "none is below -inf"
    warned = [str(w.message) for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert not warned
