"""The real conf/ tree: every preset and every group option composes, validates and builds."""

import math
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import ray
import torch

from hypersweep import sweep as sweep_module
from hypersweep.config import check_targets, validate
from hypersweep.errors import ConfigError
from hypersweep.sweep import PREPARING_NICENESS, sweep
from hypersweep.target_source import class_constant, defined_in_source
from tests.conftest import CONF, ROOT, run_launch
from trainables.targets import build

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
GROUP_OPTIONS = [(group.name, option.stem) for group in sorted(CONF.iterdir()) if group.is_dir()
                 and group.name != "experiment" for option in sorted(group.glob("*.yaml"))]


def test_the_shipped_presets_are_there():
    assert {"digits_mlp", "digits_mlp_random", "digits_cnn", "smoke"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_validates_and_builds_its_model(compose_config, name):
    config = compose_config(f"experiment={name}")
    assert config["name"], "every preset names its experiment"
    dims = validate(config)
    assert dims
    data = build(config["data"], seed=config["seed"])
    model = build(config["model"], input_shape=data.input_shape, num_classes=data.num_classes)
    logits = model(torch.as_tensor(data.x_val[:5]))
    assert logits.shape == (5, data.num_classes)


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS)
def test_every_group_option_composes_and_validates(compose_config, group, option):
    # The CNN needs images; pair each model with the data it takes.
    extra = ["data=digits_images"] if (group, option) == ("model", "cnn") else []
    extra += ["model=cnn"] if (group, option) == ("data", "digits_images") else []
    if (group, option) == ("cluster", "remote"):
        extra.append("cluster.address=127.0.0.1:6379")
    if (group, option) == ("scheduler", "pbt"):
        extra.append("search=random")  # PBT searches by itself
    if (group, option) == ("search", "grid"):
        extra += ["num_samples=1", "~space.optim.lr", "+space.optim.lr={type:choice,values:[0.001,0.01]}"]
    config = compose_config(f"{group}={option}", *extra)
    validate(config)


def test_the_default_experiment_is_the_classic_mlp_sweep(compose_config):
    config = compose_config()
    assert config["name"] == "digits_mlp"
    assert (config["search"]["name"], config["scheduler"]["name"]) == ("hyperopt", "asha")
    assert config["num_samples"] >= 32
    space = config["space"]
    assert space["optim"]["lr"] == {"type": "loguniform", "low": 1e-4, "high": 0.1, "kind": "training"}
    assert space["train"]["batch_size"]["values"] == [16, 32, 64, 128]
    assert space["model"]["hidden_layers"]["values"] == [1, 2, 3, 4]
    assert space["model"]["hidden_units"]["values"] == [64, 128, 256, 512]
    assert space["model"]["dropout"]["values"] == [0.0, 0.2, 0.3, 0.5]
    assert space["optim"]["name"]["values"] == ["adam", "sgd", "rmsprop"]
    assert space["model"]["activation"]["values"] == ["relu", "gelu", "tanh"]


@pytest.mark.parametrize(("metric", "mode"), [("val_acc", "max"), ("val_loss", "min"), ("train_loss", "min")])
def test_the_mode_follows_the_metric_unless_set(compose_config, metric, mode):
    # One override picks another metric, and a multirun over metrics optimizes each the right way.
    config = compose_config(f"metric={metric}")
    assert config["mode"] == mode
    validate(config, import_targets=False)


def test_the_reference_preset_is_random_search_without_early_stopping(compose_config):
    config = compose_config("experiment=digits_mlp_random")
    assert (config["search"]["name"], config["scheduler"]["name"]) == ("random", "fifo")
    assert config["space"] == compose_config()["space"]


def test_space_overrides_change_remove_and_add_dimensions(compose_config):
    config = compose_config(
        "space.optim.lr.high=0.01",
        "space.model.activation.values=[relu,gelu]",
        "~space.model.dropout",
        "+space.optim.weight_decay={type:loguniform,low:1e-6,high:1e-2,kind:regularization}",
        "optim.weight_decay=1e-4",
    )
    dims = {d.path: d for d in validate(config)}
    assert dims["optim.lr"].high == 0.01
    assert dims["model.activation"].values == ("relu", "gelu")
    assert "model.dropout" not in dims
    assert dims["optim.weight_decay"].kind == "regularization"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["space.optim.lr.low=0.5"], "space.optim.lr: low (0.5) must be below high (0.1)"),
        (["space.optim.lr.low=0"], "space.optim.lr.low: a log scale needs low > 0"),
        (["space.model.activation.values=[]"], "space.model.activation.values: needs a non-empty list"),
        (["+space.model.depth={type:choice,values:[1,2]}"], "space.model.depth: 'model.depth' is not in"),
        (["num_samples=0"], "num_samples: needs a whole number >= 1, got 0"),
        (["checkpoint.seconds=-1"], "checkpoint.seconds: needs a number of seconds >= 0 (0: off), got -1"),
        (["train.chance_patience=1.5"],
         "train.chance_patience: needs a whole number of reports >= 0 (0: never stop), got 1.5"),
        (["metric=accuracy"], "metric: 'accuracy' is not reported by TorchTrainable; use one of val_acc"),
        # The other way, the sweep searched for the worst model and reported it as the best.
        (["metric=val_acc", "mode=min"], "mode: val_acc is better higher, and mode=min would search for "
                                         "the worst model; use mode=max"),
        (["metric=val_loss", "mode=max"], "mode: val_loss is better lower, and mode=max would search "
                                          "for the worst model; use mode=min"),
        # A trainable of one's own says which way its metric is better.
        (["trainable=tests.planted.PlantedTrainable", "metric=score"],
         "mode: needs max or min: which way the metric is better, got None"),
        # Every trial failed on it before, with the trainable's ValueError.
        (["optim.name=adamw", "~space.optim.name"],
         "optim.name: needs one of adam, sgd, rmsprop (what TorchTrainable takes), got 'adamw'"),
        (["space.optim.name.values=[adam,lion]"],
         "space.optim.name: optim.name needs one of adam, sgd, rmsprop (what TorchTrainable takes), and "
         "the space can give it 'lion'; remove it from space.optim.name.values"),
        (["trainable=nowhere.Trainable"], "trainable: cannot import 'nowhere.Trainable'"),
        (["scheduler.grace_period=50"], "scheduler.grace_period: needs a whole number from 1 to 20"),
        (["scheduler.brackets=0"], "scheduler.brackets: needs a whole number >= 1 (1: plain ASHA), got 0"),
        (["scheduler.bracket_shares=optuna"],
         "scheduler.bracket_shares: unknown rule 'optuna'; use hyperband or ray"),
        (["search=grid"], "space.optim.lr: search=grid needs discrete dimensions"),
        (["search=grid", "~space.optim.lr"],
         "num_samples: search=grid runs every combination, and 32 repeats would train each the same "
         "way 32 times (a trial's seed follows from the sweep's seed and its values); set num_samples=1"),
        (["model._target_=nowhere.Net"], "model._target_: cannot import 'nowhere.Net' (no module"),
        # The module exists, the name does not: found when the targets are imported (Ray stopped).
        (["model._target_=trainables.models.Nope"],
         "model._target_: cannot import 'trainables.models.Nope' (_target_ 'trainables.models.Nope': "
         "module trainables.models has no Nope)"),
        (["train.epochs_per_step=30"], "train.epochs_per_step: 30 is more than train.max_epochs (20)"),
        (["name=???"], "name: no value given (???)"),
        (["optim=2"], "optim: needs a section of settings, got 2; set its settings one at a time, e.g. "
                      "optim.lr=VALUE"),
        (["~resources"], "resources: needs a section of settings, got None;"),
        (["space=3"], "space: needs a tree of config paths and their specs, got 3;"),
        (["optim.weight_decay=-1"], "optim.weight_decay: needs a number >= 0, got -1"),
        # Every value the space can give a setting passes the setting's own check.
        (["+space.optim.schedule={type:choice,values:[none,bogus]}"],
         "space.optim.schedule: optim.schedule needs one of none, step, cosine, onecycle, and the space "
         "can give it 'bogus'; remove it from space.optim.schedule.values"),
        (["space.train.batch_size.values=[0,32,64]"],
         "space.train.batch_size: train.batch_size needs a whole number >= 1, and the space can give it 0"),
        (["+space.optim.momentum={type:uniform,low:0.5,high:1.0}"],
         "space.optim.momentum: optim.momentum needs a number in [0, 1), and the space can give it 1.0; "
         "narrow the range"),
        (["~space.train.batch_size", "+space.train.batch_size={type:uniform,low:16,high:128}"],
         "space.train.batch_size: train.batch_size needs a whole number >= 1, and the space can give it "
         "72.0; use type: int for whole numbers"),
        (["resources.gpu=1.5"], "resources.gpu: needs a number of GPUs >= 0: a fraction up to 1"),
        (["+space.data._target_={type:choice,values:[trainables.data.load_digits]}"],
         "space.data._target_: the data set itself cannot be tuned"),
        (["experiment=digits_mlp_pbt", "search=hyperopt"],
         "search: PBT picks new values itself (exploit/explore) and Ray cannot combine it with a "
         "search algorithm; use search=random"),
        (["experiment=digits_mlp_pbt", "scheduler.mutable=[model.hidden_units]"],
         "scheduler.mutable: model.hidden_units cannot change during training"),
        (["experiment=digits_mlp_pbt", "scheduler.mutable=[optim.momentum]"],
         "scheduler.mutable: optim.momentum is not in the search space; add space.optim.momentum"),
        (["experiment=digits_mlp_pbt", "scheduler.perturbation_interval=20"],
         "scheduler.perturbation_interval: needs a whole number from 1 to 19"),
        (["experiment=digits_mlp_pbt", "scheduler.quantile_fraction=0.7"],
         "scheduler.quantile_fraction: needs a number from 0 to 0.5, got 0.7"),
        (["experiment=digits_mlp_pbt", "num_samples=1"],
         "num_samples: PBT needs a population of at least 2 trials, got 1"),
        (["storage_path='s3://bucket/runs?region=eu-west-1&secret_key=abc'"],
         "storage_path: the URI carries credentials (secret_key), which would be saved"),
        (["storage_path='gs://user:pw@bucket/runs'"],
         "storage_path: the URI carries credentials (a password)"),
        (["storage_path=s3:///runs"], "storage_path: 's3:///runs' names no bucket"),
        (["pbt_schedule=[{epoch:2,values:{model.hidden_units:64}}]"],
         "pbt_schedule[0].values: model.hidden_units cannot change during training"),
    ],
)
def test_bad_configs_fail_in_one_line_before_ray_starts(compose_config, overrides, message, tmp_path,
                                                         monkeypatch):
    # The default storage_path, runs/, is relative: in the repository it may hold the user's own
    # default sweep, which a launch with other settings meets first.
    monkeypatch.chdir(tmp_path)
    if overrides == ["name=???"]:
        with pytest.raises(ConfigError, match=r"name: no value given"):
            compose_config(*overrides)
        return
    config = compose_config(*overrides)
    with pytest.raises(ConfigError) as raised:
        sweep(config, [], {})
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    assert not ray.is_initialized()


def test_launch_reports_a_bad_spec_as_one_line_and_exit_code_2(tmp_path: Path):
    done = run_launch("experiment=smoke", "space.optim.lr.low=1", f"storage_path={tmp_path}", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: space.optim.lr: low (1) must be below high (0.1); swap or fix them")
    assert "ray" not in done.stdout.lower()
    assert not (tmp_path / "smoke" / "sweep.json").exists()


def test_a_storage_path_that_cannot_hold_the_experiment_fails_in_one_line(tmp_path: Path):
    a_file = tmp_path / "runs"
    a_file.write_text("")
    done = run_launch("experiment=smoke", "storage_path=runs", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: storage_path: cannot make the experiment folder {a_file}/smoke "
                                   f"(Not a directory); choose a folder you can write")
    assert a_file.read_text() == ""


def test_help_lists_the_config_groups_and_their_options(tmp_path: Path):
    done = run_launch("--help", cwd=tmp_path)
    assert done.returncode == 0
    for group, option in [("experiment", "digits_cnn"), ("model", "cnn"), ("search", "hyperopt"),
                          ("scheduler", "asha"), ("cluster", "local")]:
        assert f"{group}: " in done.stdout and option in done.stdout


def test_cfg_job_prints_the_composed_config_and_runs_nothing(tmp_path: Path):
    done = run_launch("--cfg", "job", "experiment=digits_cnn", "num_samples=7", cwd=tmp_path)
    assert done.returncode == 0
    assert "_target_: trainables.models.SmallCNN" in done.stdout
    assert "num_samples: 7" in done.stdout
    assert not any(tmp_path.iterdir())


def test_credentials_in_a_storage_uri_are_refused_and_written_nowhere(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # where a bucket's local copy goes
    (tmp_path / "tmp").mkdir()
    done = run_launch("experiment=smoke", "storage_path='s3://sweeps/runs?secret_key=SEKRET'",
                      cwd=tmp_path)
    assert done.returncode == 2
    assert "the URI carries credentials (secret_key)" in done.stderr
    assert "SEKRET" not in done.stdout + done.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not [p for p in written if b"SEKRET" in p.read_bytes()], written


def test_an_unreachable_bucket_fails_in_one_line_and_leaves_no_folder_behind(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    uri = "s3://bucket/runs?endpoint_override=http://127.0.0.1:9&scheme=http"  # nothing listens
    done = run_launch("experiment=smoke", f"storage_path='{uri}'", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: storage_path: cannot use s3://bucket/runs/smoke?endpoint_override="), done.stderr
    assert "check the URI, its endpoint and the credentials" in lines[0]
    assert "ray logs" not in done.stdout, "Ray was started for a bucket it cannot use"
    assert not any(tmp_path.iterdir()), "Hydra's launch records went to a folder named 's3:'"


def test_estimated_epochs_follow_the_asha_rungs(compose_config):
    from schedulers.trial_schedulers import estimated_epochs, expected_trials_per_rung

    config = compose_config("scheduler.brackets=1")  # 20 epochs, grace 2, factor 3: rungs 2, 6, 18
    assert expected_trials_per_rung(config, 27) == [(2, 27), (6, 9), (18, 3), (20, 1)]
    # The baseline trains all 20 epochs; the 26 others go by the rungs.
    assert estimated_epochs(config, 27) == 20 + 2 * 26 + 4 * 26 / 3 + 12 * 26 / 9 + 2 * 26 / 27
    no_baseline = compose_config("scheduler.brackets=1", "scheduler.keep_baseline=false")
    assert estimated_epochs(no_baseline, 27) == 2 * 27 + 4 * 9 + 12 * 3 + 2 * 1
    # Three brackets; the second bracket's trials skip the rung at 2 epochs, the third's both
    # rungs before 18. Hyperband's rule gives them 9:5:3 of the trials, Ray's 1 : 1/e : 1/e^2.
    per_bracket = [[27, 9, 3, 1], [27, 27, 9, 3], [27, 27, 27, 9]]
    for rule, weights in (("hyperband", [9, 5, 3]), ("ray", [1, math.e**-1, math.e**-2])):
        shares = [weight / sum(weights) for weight in weights]
        expected = [sum(share * reach[k] for share, reach in zip(shares, per_bracket, strict=True))
                    for k in range(4)]
        brackets = compose_config("scheduler.brackets=3", f"scheduler.bracket_shares={rule}")
        assert [epochs for epochs, _ in expected_trials_per_rung(brackets, 27)] == [2, 6, 18, 20]
        assert [reaching for _, reaching in expected_trials_per_rung(brackets, 27)] == pytest.approx(expected)
    # Fewer epochs, fewer rungs: 5 epochs leave one rung (at 2), so one bracket, not an error.
    short = compose_config("scheduler.brackets=3", "train.max_epochs=5")
    validate(short)
    assert expected_trials_per_rung(short, 27) == expected_trials_per_rung(
        compose_config("scheduler.brackets=1", "train.max_epochs=5"), 27) == [(2, 27), (5, 9)]
    assert estimated_epochs(compose_config("scheduler=fifo"), 27) == 27 * 20


def test_dry_run_prints_the_plan_and_starts_nothing(tmp_path: Path):
    done = run_launch("experiment=smoke", "dry_run=true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.search(r"at once:   \d+ trials on this cluster \(1 node\)", done.stdout)
    assert "estimate:  ~" in done.stdout and "dry run: nothing was started." in done.stdout
    assert not list(tmp_path.rglob("sweep.json")) and not list(tmp_path.rglob("trial_*"))


@pytest.mark.parametrize(("override", "error"), [
    ("experiment=nonexistent", "error: experiment: no option 'nonexistent'; choose one of digits_cnn, "
                               "digits_cnn_pbt, digits_mlp, "),
    ("optim.lrr=0.1", "error: optim.lrr: no such setting; check its spelling (python launch.py --cfg job "
                      "shows every setting), or add a new one with +optim.lrr=0.1"),
    ("optim.lr=[", "error: optim.lr=[: no viable alternative at input '['"),
    ("~space.nothing", "error: Could not delete from config. 'space.nothing' does not exist."),
    ("space.optim.lr={type:choice,values:[0.01]}",
     "error: space.optim.lr: a {...} value is merged into the one there, which has no 'values'; to "
     "replace it whole, remove it first: '~space.optim.lr' '+space.optim.lr={type:choice,values:[0.01]}'"),
    ("model=null", "error: model: needs the name of one of its options, got 'model=null'; choose one of "
                   "cnn, mlp, transformer"),
    ("search=4", "error: search: needs the name of one of its options, got 'search=4'; choose one of "
                 "grid, hyperopt, random"),
])
def test_hydra_s_command_line_errors_are_one_line_and_exit_code_2(tmp_path: Path, override, error):
    # Hydra refuses them before running anything: nothing is written.
    done = run_launch("experiment=smoke", override, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(error), done.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(("override", "error"), [
    ("resources.gpu=1", "error: resources.gpu: a trial asks for 1 GPU but the cluster has no GPU"),
    ("data.val_fraction=0.9", "error: data.val_fraction + data.test_fraction must stay below 1"),
    ("data.val_fraction=null", "error: data.val_fraction: needs a fraction between 0 and 1, got None"),
    ("model=cnn", "error: model._target_: trainables.models.SmallCNN needs examples of shape (channels, "
                  "height, width), and trainables.data.load_digits gives (64,); choose data of that shape "
                  "(data=digits_images: images; data=mnist1d: sequences)"),
    ("augment.shift=2", "error: augment.shift: shifting needs images (channels, height, width), and "
                        "trainables.data.load_digits gives examples of shape (64,); use data=digits_images "
                        "or augment.shift=0"),
    # Each trial failed on it before, with a traceback ("'tuple' object has no attribute 'source'").
    ("data._target_=tests.unsplit_data.load_digits_unsplit",
     "error: data._target_: tests.unsplit_data.load_digits_unsplit returned a tuple, and TorchTrainable "
     "trains on a SplitData; return trainables.data.split(features, labels, val_fraction, test_fraction, "
     "seed)"),
])
def test_a_dry_run_refuses_what_the_run_would_refuse_before_its_first_trial(tmp_path: Path, override, error):
    # A preview that passes must be a sweep that starts: the data set's and the cluster's checks too.
    done = run_launch("experiment=smoke", "cluster.num_gpus=0", override, "dry_run=true", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert error in done.stderr
    assert "dry run: nothing was started." not in done.stdout


@pytest.mark.parametrize("args", [("--help",), ("experiment=smoke", "space.optim.lr.low=1"),
                                  ("experiment=digits_mlp_pbt", "scheduler.mutable=[model.hidden_units]")])
def test_help_and_config_errors_import_neither_torch_nor_ray(tmp_path: Path, args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-X", "importtime", str(ROOT / "launch.py"), *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert done.returncode in (0, 2)
    assert not imported & {"torch", "ray"}, "these paths must stay fast (issue: start-up under 2 s)"


@pytest.mark.parametrize(("search", "imports_hyperopt"), [("hyperopt", True), ("random", False)])
def test_a_sweeps_driver_never_imports_torch_or_tensorboard_nor_hyperopt_unless_tpe(
        tmp_path: Path, search: str, imports_hyperopt: bool):
    # Torch and TensorBoard are for the trial processes: in the driver torch cost ~1 s of start-up
    # and 180 MiB, TensorBoard's writing side 0.15 s; hyperopt is 0.1 s that only TPE needs; the
    # code of pandas and Ray Data, which Ray Tune imports, 0.5 s, and of hyperopt's adaptive TPE
    # (scipy.stats), 0.8 s, that no sweep needs.
    script = ("import atexit, runpy, sys\n"
              "from hypersweep.deferred_imports import is_deferred\n"
              "ran = lambda name: name in sys.modules and not is_deferred(sys.modules[name])\n"
              "atexit.register(lambda: print('driver imported:', 'ray.tune' in sys.modules, "
              "'trainables.trainable' in sys.modules, 'torch' in sys.modules, "
              "'tensorboard' in sys.modules, 'hyperopt' in sys.modules, ran('pandas'), ran('ray.data'), "
              "'scipy.stats' in sys.modules))\n"
              f"sys.argv = [{str(ROOT / 'launch.py')!r}, 'experiment=smoke', 'num_samples=2', "
              f"'train.max_epochs=1', 'search={search}']\n"
              "runpy.run_path(sys.argv[0], run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "best trial" in done.stdout
    assert f"driver imported: True True False False {imports_hyperopt} False False False" in done.stdout


@pytest.mark.skipif(sys.platform != "linux", reason="a thread has a CPU priority of its own on Linux only")
@pytest.mark.parametrize(("cluster", "in_background"), [(("cluster=local",), True),
                                                        (("cluster=remote", "cluster.address=auto"), False)])
def test_the_embedded_ray_starts_ahead_of_the_preparing_thread(compose_config, monkeypatch, cluster,
                                                               in_background):
    seen = {}

    def prepare(config: dict) -> str:  # what _prepare does is tested by every sweep; here: where
        seen["thread"] = threading.get_native_id()
        seen["niceness"] = os.getpriority(os.PRIO_PROCESS, seen["thread"])
        return "data"

    monkeypatch.setattr(sweep_module, "_prepare", prepare)
    main = threading.get_native_id()
    before = os.getpriority(os.PRIO_PROCESS, main)
    wait = sweep_module._start_preparing(compose_config("experiment=smoke", *cluster))
    assert wait() == "data"
    assert (seen["thread"] != main) is in_background
    expected = min(before + PREPARING_NICENESS, 19) if in_background else before
    assert seen["niceness"] == expected
    assert os.getpriority(os.PRIO_PROCESS, main) == before  # the driver itself keeps its priority


def test_targets_are_found_in_their_source_or_else_imported(tmp_path: Path, monkeypatch):
    (tmp_path / "made_here.py").write_text(
        "import json\nfrom os import path as joined\n\nclass Net:\n    pass\n\ndef make():\n    pass\n\n"
        "size: int = 3\nalias = Net\nglobals()['dynamic'] = Net\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    defined = {name for name in ("json", "joined", "Net", "make", "size", "alias", "dynamic", "path")
               if defined_in_source(f"made_here.{name}")}
    assert defined == {"json", "joined", "Net", "make", "size", "alias"}
    config = {"model": {"_target_": "made_here.dynamic"}, "data": {"_target_": "made_here.make"},
              "trainable": "made_here.Net"}
    check_targets(config)  # `dynamic` only exists once the module runs: imported, and found
    with pytest.raises(ConfigError, match="model._target_: cannot import 'made_here.Missing'"):
        check_targets({**config, "model": {"_target_": "made_here.Missing"}})


@pytest.mark.parametrize("experiment", ["digits_mlp", "digits_cnn", "mnist1d_transformer"])
def test_each_shipped_model_builds_with_every_value_its_choices_declare(compose_config, experiment):
    # The driver refuses any other value on the strength of CHOICES: each declared one must build.
    config = compose_config(f"experiment={experiment}")
    choices = class_constant(config["model"]["_target_"], "CHOICES")
    assert "activation" in choices
    data = build(config["data"], seed=0)
    for name, values in choices.items():
        for value in values:
            model = build({**config["model"], name: value}, input_shape=data.input_shape,
                          num_classes=data.num_classes)
            model.train()  # batch normalization needs a batch of more than one in training mode
            assert model(torch.as_tensor(data.x_val[:4])).shape == (4, data.num_classes), (name, value)


@pytest.mark.parametrize(("overrides", "error"), [
    (["model.activation=swish"], "model.activation: needs one of relu, gelu, tanh, silu, elu (what "
                                 "trainables.models.MLP takes), got 'swish'"),
    (["model.norm=group"], "model.norm: needs one of none, batch, layer (what trainables.models.MLP "
                           "takes), got 'group'"),
    (["experiment=mnist1d_transformer", "model.init=he"],
     "model.init: needs one of torch, xavier, kaiming, orthogonal (what "
     "trainables.models.SequenceTransformer takes), got 'he'"),
    # Before, only the trials that drew it failed, after the sweep had started.
    (["space.model.activation.values=[relu,swish]"],
     "space.model.activation: model.activation needs one of relu, gelu, tanh, silu, elu (what "
     "trainables.models.MLP takes), and the space can give it 'swish'; remove it from "
     "space.model.activation.values"),
    (["experiment=digits_cnn", "+space.model.norm={type:choice,values:[none,instance]}"],
     "space.model.norm: model.norm needs one of none, batch, layer (what trainables.models.SmallCNN "
     "takes), and the space can give it 'instance'"),
    # A Transformer's width divides among its heads: every pair the config and space can give.
    (["experiment=mnist1d_transformer", "model.heads=5", "~space.model.heads", "~space.model.width"],
     "model.width: needs a multiple of model.heads (what trainables.models.SequenceTransformer takes), "
     "got 64 with model.heads=5; change one of them"),
    (["experiment=mnist1d_transformer", "space.model.width.values=[30,64]"],
     "space.model.width: model.width needs a multiple of model.heads (what "
     "trainables.models.SequenceTransformer takes), and the space can give model.width=30 with "
     "model.heads=4; choose values that divide evenly (type: choice)"),
    (["experiment=mnist1d_transformer", "space.model.heads.values=[2,4,3]"],
     "space.model.heads: model.width needs a multiple of model.heads (what "
     "trainables.models.SequenceTransformer takes), and the space can give model.width=64 with "
     "model.heads=3;"),
    (["experiment=mnist1d_transformer", "space.model.width.values=[36,64]", "space.model.heads.values=[4,8]"],
     "space.model.width: model.width needs a multiple of model.heads (what "
     "trainables.models.SequenceTransformer takes), and the space can give model.width=36 with "
     "model.heads=8;"),
    (["experiment=mnist1d_transformer", "~space.model.width", "+space.model.width={type:int,low:32,high:64}"],
     "space.model.width: model.width needs a multiple of model.heads (what "
     "trainables.models.SequenceTransformer takes), and the space can give model.width=33 with "
     "model.heads=4;"),
    (["experiment=mnist1d_transformer", "space.model.width.values=[48,64,128]"], None),
    # The Transformer takes the same activations as the others (torch's layer alone took two).
    (["experiment=mnist1d_transformer", "model.activation=tanh",
      "+space.model.activation={type:choice,values:[tanh,elu]}"], None),
])
def test_a_model_setting_the_model_cannot_take_is_refused_before_ray_starts(compose_config, overrides,
                                                                            error):
    config = compose_config(*overrides)
    if error is None:
        validate(config, import_targets=False)
        return
    with pytest.raises(ConfigError) as raised:
        validate(config, import_targets=False)
    assert str(raised.value).startswith(error)


def test_a_users_trainable_is_imported_by_validation_only_when_pbt_asks_what_it_can_change(
        compose_config, tmp_path: Path, monkeypatch):
    # Importing a trainable imports Ray Tune (about a second); any other sweep imports it later,
    # in the thread that runs while Ray starts.
    (tmp_path / "own_trainable.py").write_text("class Own:\n    LIVE_SETTINGS = ('optim.momentum',)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "own_trainable", raising=False)
    validate(compose_config("trainable=own_trainable.Own"), import_targets=False)
    assert "own_trainable" not in sys.modules
    pbt = compose_config("trainable=own_trainable.Own", "scheduler=pbt", "search=random")
    with pytest.raises(ConfigError, match=r"scheduler.mutable: optim.lr cannot change during training "
                                          r"\(the trainable can change optim.momentum\)"):
        validate(pbt, import_targets=False)
    assert "own_trainable" in sys.modules


OWN_PARTS = '''
class Net:
    def __init__(self, input_shape, num_classes, width=8, *, depth):
        pass

class Open:
    def __init__(self, input_shape, num_classes, **options):
        pass

class Blind:
    def __init__(self, input_shape, width=8):
        pass

class Inherits(Net):
    pass

@decorated
class Decorated:
    def __init__(self, input_shape, num_classes):
        pass

def loader(val_fraction=0.2, test_fraction=0.2, as_images=False):
    pass

def seeded_loader(val_fraction, test_fraction, as_images, seed):
    pass

COLOURS = ("red", "blue")
DARK = "dark"

class Coloured:
    CHOICES = {"colour": COLOURS, "shade": ("light", DARK)}

    def __init__(self, input_shape, num_classes, colour="red", shade="light"):
        pass
'''


@pytest.mark.parametrize(
    ("model", "data", "error"),
    [
        ({"width": 4}, {}, "model.depth: own_parts.Net needs this argument, which the config does not "
                           "set; set it (model.depth: VALUE in its yaml, or +model.depth=VALUE on the "
                           "command line)"),
        ({"width": 4, "depth": 2, "colour": 1}, {},
         "model.colour: own_parts.Net takes no argument 'colour' (it takes width, depth); remove the "
         "setting (~model.colour on the command line) or add the parameter"),
        ({"depth": 2, "num_classes": 10}, {},
         "model.num_classes: hypersweep gives every model num_classes (from the data); remove the "
         "setting (~model.num_classes on the command line)"),
        ({"_target_": "own_parts.Blind"}, {},
         "model._target_: own_parts.Blind takes no argument 'num_classes', which hypersweep gives every "
         "model (from the data); add that parameter"),
        ({"depth": 2}, {"_target_": "own_parts.loader"},
         "data._target_: own_parts.loader takes no argument 'seed', which hypersweep gives every data "
         "loader (the sweep's seed=..., for the split); add that parameter"),
        ({"depth": 2}, {"_target_": "own_parts.seeded_loader", "test_fraction": 0.2, "as_images": False},
         "data.val_fraction: own_parts.seeded_loader needs this argument"),
        # Nothing to refuse: settings it takes, **options, a constructor the source does not show.
        ({"depth": 2}, {"_target_": "own_parts.seeded_loader", "val_fraction": 0.2, "test_fraction": 0.2,
                        "as_images": False}, None),
        ({"_target_": "own_parts.Open", "colour": 1}, {}, None),
        ({"_target_": "own_parts.Inherits", "colour": 1}, {}, None),
        ({"_target_": "own_parts.Decorated", "colour": 1}, {}, None),
        # Its CHOICES, with a module constant's value read in place of its name.
        ({"_target_": "own_parts.Coloured", "colour": "green"}, {},
         "model.colour: needs one of red, blue (what own_parts.Coloured takes), got 'green'"),
        ({"_target_": "own_parts.Coloured", "colour": "blue", "shade": "dark"}, {}, None),
    ],
)
def test_a_model_or_data_loader_that_does_not_take_its_settings_is_refused_before_ray_starts(
        compose_config, tmp_path: Path, monkeypatch, model, data, error):
    # Read from the source: the model's module (which imports torch) is not imported.
    (tmp_path / "own_parts.py").write_text(OWN_PARTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "own_parts", raising=False)
    config = compose_config("~space.model")
    config["model"] = {"_target_": "own_parts.Net", **model}
    config["data"] = data or config["data"]
    if error is None:
        validate(config, import_targets=False)
    else:
        with pytest.raises(ConfigError) as raised:
            validate(config, import_targets=False)
        assert str(raised.value).startswith(error)
    assert "own_parts" not in sys.modules


def test_a_users_own_trainable_may_build_its_model_from_other_settings(compose_config, tmp_path: Path,
                                                                      monkeypatch):
    (tmp_path / "own_parts.py").write_text(OWN_PARTS + "\nclass Trainable:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = compose_config("~space.model", "~space.optim.name", "trainable=own_parts.Trainable")
    config["model"] = {"_target_": "own_parts.Net", "colour": 1}
    validate(config, import_targets=False)
    # It may read its model's CHOICES, its optimizer's name and its metric's direction otherwise.
    config["model"] = {"_target_": "own_parts.Coloured", "colour": "green"}
    config["optim"]["name"], config["mode"] = "lion", "min"
    validate(config, import_targets=False)
    config["data"] = {**config["data"], "_target_": "own_parts.loader"}  # the driver calls it, as ever
    with pytest.raises(ConfigError, match="data._target_: own_parts.loader takes no argument 'seed'"):
        validate(config, import_targets=False)
