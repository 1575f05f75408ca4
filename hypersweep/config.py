"""From Hydra's composed config to validated plain data, before anything expensive runs."""

import importlib.util
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from hypersweep.dotted import get_path, has_path
from hypersweep.errors import ConfigError
from hypersweep.paths import is_uri, uri_credentials
from hypersweep.target_source import class_constant, defined_in_source, parameters
from schedulers.searchers import check_search
from schedulers.space import Dimension, parse_space
from schedulers.trial_schedulers import check_scheduler
from trainables.live import LIVE_SETTINGS
from trainables.lr_schedule import SCHEDULES
from trainables.optimizer_names import OPTIMIZERS
from trainables.targets import import_target

RESUME_MODES = ("auto", "never", "overwrite")
FAILED_MODES = ("skip", "retry", "restart")
DEFAULT_TRAINABLE = "trainables.trainable.TorchTrainable"
# What TorchTrainable reports each step, so what a sweep can optimize, and which way is better.
REPORTED_METRICS = {"val_acc": "max", "val_loss": "min", "train_loss": "min"}


def to_plain(cfg: DictConfig) -> dict:
    """Resolve every interpolation and missing value into plain dicts and lists, and a `mode`
    left null into the metric's own direction, for a metric named as TorchTrainable's are.

    From here on no OmegaConf object is passed around, so none reaches a Ray worker.
    """
    try:
        config = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as err:
        raise ConfigError(f"{err.full_key}: no value given (???); set it, e.g. "
                          f"{err.full_key}=VALUE") from None
    except OmegaConfBaseException as err:
        reason = str(err).splitlines()[0]
        raise ConfigError(f"{err.full_key or 'config'}: {reason}") from None
    # So that metric=val_loss alone, or in a multirun over metrics, optimizes the right way.
    if config.get("mode") is None:
        config["mode"] = REPORTED_METRICS.get(config.get("metric"))
    return config


def _is_int(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _is_number(value: Any, low: float, strict: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return value > low if strict else value >= low


TARGET_KEYS = ("model._target_", "data._target_", "trainable")
# What a model's or data loader's target is called, and the arguments that hypersweep adds to
# its section's settings, with where they come from.
_ADDED_ARGUMENTS = {
    "model": ("model", {"input_shape": "the shape of one example", "num_classes": "from the data"}),
    "data": ("data loader", {"seed": "the sweep's seed=..., for the split"}),
}
# A setting's path, whether a value passes, and what it needs (for the error).
Check = tuple[str, Callable[[Any], bool], str]
_CHECKS: list[Check] = [
    ("name", lambda v: isinstance(v, str) and v.strip() != "" and "/" not in v,
     "a non-empty name without '/'"),
    ("seed", lambda v: _is_int(v, 0), "a whole number >= 0"),
    ("num_samples", lambda v: _is_int(v, 1), "a whole number >= 1"),
    ("cluster.address", lambda v: isinstance(v, str) and v != "",
     "'local' or the cluster's HOST:PORT (ray://HOST:PORT for client mode)"),
    ("metric", lambda v: isinstance(v, str) and v != "", "the name of a reported metric"),
    ("mode", lambda v: v in ("max", "min"), "max or min: which way the metric is better"),
    ("train.batch_size", lambda v: _is_int(v, 1), "a whole number >= 1"),
    ("train.max_epochs", lambda v: _is_int(v, 1), "a whole number >= 1"),
    ("train.epochs_per_step", lambda v: _is_int(v, 1), "a whole number >= 1"),
    ("optim.lr", lambda v: _is_number(v, 0, strict=True), "a number > 0"),
    ("optim.schedule", lambda v: v in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
    ("optim.warmup_epochs", lambda v: _is_number(v, 0), "a number of epochs >= 0"),
    ("optim.step_epochs", lambda v: _is_number(v, 0, strict=True), "a number of epochs > 0"),
    ("optim.step_gamma", lambda v: _is_number(v, 0, strict=True) and v <= 1,
     "a factor in (0, 1]"),
    ("optim.weight_decay", lambda v: _is_number(v, 0), "a number >= 0"),
    ("optim.momentum", lambda v: _is_number(v, 0) and v < 1, "a number in [0, 1)"),
    ("optim.beta1", lambda v: _is_number(v, 0) and v < 1, "a number in [0, 1)"),
    ("optim.beta2", lambda v: _is_number(v, 0) and v < 1, "a number in [0, 1)"),
    ("augment.shift", lambda v: _is_int(v, 0), "a whole number of pixels >= 0"),
    ("augment.noise", lambda v: _is_number(v, 0), "a standard deviation >= 0"),
    ("train.patience", lambda v: _is_int(v, 0), "a whole number of reports >= 0 (0: never stop)"),
    ("train.chance_patience", lambda v: _is_int(v, 0), "a whole number of reports >= 0 (0: never stop)"),
    ("resources.cpu", lambda v: _is_number(v, 0, strict=True), "a number of CPUs > 0"),
    ("resources.gpu", lambda v: _is_number(v, 0) and (v <= 1 or int(v) == v),
     "a number of GPUs >= 0: a fraction up to 1 (0.5 shares one) or a whole number"),
    ("resources.memory_gb", lambda v: _is_number(v, 0), "a number of GiB >= 0"),
    ("max_concurrent", lambda v: _is_int(v, 0), "a whole number >= 0 (0: no limit)"),
    ("checkpoint.frequency", lambda v: _is_int(v, 0), "a whole number >= 0 (0: only at the end)"),
    ("checkpoint.seconds", lambda v: _is_number(v, 0), "a number of seconds >= 0 (0: off)"),
    ("checkpoint.num_to_keep", lambda v: _is_int(v, 1), "a whole number >= 1"),
    ("resume", lambda v: v in RESUME_MODES, f"one of {', '.join(RESUME_MODES)}"),
    ("resume_failed", lambda v: v in FAILED_MODES, f"one of {', '.join(FAILED_MODES)}"),
    ("max_failures", lambda v: _is_int(v, 0), "a whole number >= 0 (retries of a failing trial)"),
    ("snapshot_seconds", lambda v: _is_number(v, 0, strict=True), "a number of seconds > 0"),
    ("allow_version_change", lambda v: isinstance(v, bool), "true or false"),
    ("dry_run", lambda v: isinstance(v, bool), "true or false"),
    ("reuse_actors", lambda v: isinstance(v, bool), "true or false"),
    ("tensorboard", lambda v: isinstance(v, bool), "true or false"),
]


def _check_sections(config: dict) -> None:
    """Name a section replaced by a single value (`optim=2`) itself, rather than by the first
    setting that went with it."""
    for path, _, _ in _CHECKS:
        section = path.partition(".")[0]
        if section != path and not isinstance(config.get(section), dict):
            raise ConfigError(f"{section}: needs a section of settings, got {config.get(section)!r}; "
                              f"set its settings one at a time, e.g. {path}=VALUE")


def _one_of(path: str, allowed: tuple, source: str) -> Check:
    return (path, lambda value: value in allowed, f"one of {', '.join(map(str, allowed))} (what "
                                                  f"{source} takes)")


def _trainable_checks(config: dict) -> list[Check]:
    """Checks for the settings that only the shipped trainable gives a meaning: its optimizer's
    name, and the model settings that take one of a fixed set of values, as its model declares
    them (CHOICES, read from its source) for those the config sets. A trainable of one's own may
    read them otherwise."""
    if config.get("trainable") != DEFAULT_TRAINABLE:
        return []
    checks = [_one_of("optim.name", OPTIMIZERS, "TorchTrainable")]
    model = config.get("model")
    target = str(model.get("_target_")) if isinstance(model, dict) else ""
    choices = class_constant(target, "CHOICES") if target else None
    if isinstance(choices, dict):
        checks += [_one_of(f"model.{name}", tuple(allowed), target)
                   for name, allowed in choices.items() if name in model]
    return checks


def _check_space_values(dims: list[Dimension], checks_made: list[Check]) -> None:
    """Every value the space can give a checked setting passes that setting's check: a bad one
    would fail only the trials that draw it, after the sweep started."""
    checks = {path: (ok, need) for path, ok, need in checks_made}
    for dim in dims:
        if dim.path not in checks:
            continue
        ok, need = checks[dim.path]
        if dim.type in ("choice", "grid"):
            values, fix = dim.values, f"remove it from space.{dim.path}.values"
        elif dim.type == "int":
            values, fix = (int(dim.low), int(dim.high)), "narrow the range"
        else:  # the ends of the range, and a fraction between them, as it draws
            values, fix = (dim.low, dim.high, (dim.low + dim.high) / 2), "narrow the range"
        for value in values:
            if not ok(value):
                if dim.type in ("uniform", "loguniform") and ok(round(value)):
                    fix = "use type: int for whole numbers"
                raise ConfigError(f"space.{dim.path}: {dim.path} needs {need}, and the space can give "
                                  f"it {value!r}; {fix}")


def _check_metric(metric: Any, mode: Any) -> None:
    """The metric is one TorchTrainable reports, optimized the way that makes it better: the other
    way, the sweep would search for the worst model and call it the best."""
    if not isinstance(metric, str) or metric not in REPORTED_METRICS:
        raise ConfigError(f"metric: {metric!r} is not reported by TorchTrainable; use one "
                          f"of {', '.join(REPORTED_METRICS)}")
    if mode in ("max", "min") and mode != REPORTED_METRICS[metric]:
        better = "higher" if REPORTED_METRICS[metric] == "max" else "lower"
        raise ConfigError(f"mode: {metric} is better {better}, and mode={mode} would search for the "
                          f"worst model; use mode={REPORTED_METRICS[metric]}")


def _check_pbt_schedule(config: dict, live_settings: tuple[str, ...] | None) -> None:
    schedule = config.get("pbt_schedule") or []
    if not isinstance(schedule, list):
        raise ConfigError(f"pbt_schedule: needs a list of {{epoch: E, values: {{...}}}}, "
                          f"got {schedule!r}")
    for index, entry in enumerate(schedule):
        key = f"pbt_schedule[{index}]"
        if not isinstance(entry, dict) or not _is_int(entry.get("epoch"), 0) \
                or not isinstance(entry.get("values"), dict):
            raise ConfigError(f"{key}: needs {{epoch: E (a whole number >= 0), values: "
                              f"{{optim.lr: ...}}}}, got {entry!r}")
        for path in entry["values"]:
            if live_settings is not None and path not in live_settings:
                raise ConfigError(f"{key}.values: {path} cannot change during training; the "
                                  f"trainable can change {', '.join(live_settings)}")


def _import(key: str, config: dict) -> Any:
    target = get_path(config, key, None)
    try:
        return import_target(str(target))
    except ImportError as err:
        raise ConfigError(f"{key}: cannot import {target!r} ({err}); give a dotted path to a "
                          f"class or function on the Python path") from None


def _check_uri(uri: str) -> None:
    """Refuse a storage URI without a bucket, or with credentials in it."""
    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc:
        raise ConfigError(f"storage_path: {uri!r} names no bucket; write it as "
                          f"s3://BUCKET/PATH (or gs://, ...)")
    secrets = uri_credentials(uri)
    if secrets:
        raise ConfigError(f"storage_path: the URI carries credentials ({', '.join(secrets)}), which "
                          f"would be saved with the experiment; remove them and give them the "
                          f"cloud's way (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, "
                          f"GOOGLE_APPLICATION_CREDENTIALS)")


def _live_settings(config: dict) -> tuple[str, ...] | None:
    """What the trainable can change mid-training, where PBT needs to know (None: undeclared).

    The shipped trainable's are known without importing it. A user's own trainable is imported
    to ask only for PBT or a replayed PBT schedule: importing it means importing Ray Tune (about
    a second), which any other sweep does later, in the thread that runs while Ray starts.
    """
    if config["trainable"] == DEFAULT_TRAINABLE:
        return LIVE_SETTINGS
    if config["scheduler"]["name"] != "pbt" and not config.get("pbt_schedule"):
        return None
    return getattr(_import("trainable", config), "LIVE_SETTINGS", None)


def validate(config: dict, import_targets: bool = True) -> list[Dimension]:
    """Check the whole config and return the search space's dimensions.

    Raises ConfigError with one line naming the key, the bad value and the fix. The importable
    targets (model, data, trainable) are checked last; without `import_targets`, the caller
    checks them later with `check_targets`.
    """
    _check_sections(config)
    if config.get("trainable") == DEFAULT_TRAINABLE:  # first: a metric it does not report has no mode
        _check_metric(config.get("metric"), config.get("mode"))
    checks = _CHECKS + _trainable_checks(config)
    for path, ok, need in checks:
        value = get_path(config, path, None)
        if not ok(value):
            raise ConfigError(f"{path}: needs {need}, got {value!r}")
    if is_uri(config["storage_path"]):
        _check_uri(config["storage_path"])
    if config["train"]["epochs_per_step"] > config["train"]["max_epochs"]:
        raise ConfigError(f"train.epochs_per_step: {config['train']['epochs_per_step']} is more "
                          f"than train.max_epochs ({config['train']['max_epochs']}); lower it")
    if has_path(config.get("space") or {}, "data._target_"):
        raise ConfigError("space.data._target_: the data set itself cannot be tuned; run one "
                          "sweep per data set (python launch.py -m data=digits,...)")
    dims = parse_space(config)
    _check_space_values(dims, checks)
    check_search(config, dims)
    live_settings = _live_settings(config)
    check_scheduler(config, dims, live_settings)
    _check_pbt_schedule(config, live_settings)
    for key in TARGET_KEYS:
        _check_module_exists(key, config)
    _check_arguments("data", config)
    if config["trainable"] == DEFAULT_TRAINABLE:  # a trainable of one's own may build its model otherwise
        _check_arguments("model", config)
        _check_multiples(config["model"], dims)
    if import_targets:
        check_targets(config)
    return dims


def check_targets(config: dict) -> None:
    """Check that the model, data and trainable targets name something; ConfigError names the
    first that does not.

    The trainable is imported: the driver hands it to Ray. A model or data target that its
    module's source defines at the top level is not: the model's module imports torch, which
    the driver otherwise never needs (about a second and 180 MiB); an import that fails inside
    such a module fails the trials instead, with its traceback. Any other target is imported,
    so that a missing name is a one-line error.
    """
    for key in TARGET_KEYS:
        if key == "trainable" or not defined_in_source(str(get_path(config, key, None))):
            _import(key, config)


def _check_arguments(section: str, config: dict) -> None:
    """Check a model or data section's settings against its target's parameters, as read from
    its source: each setting is passed to it by name, with what hypersweep adds."""
    spec = config[section]
    target = spec["_target_"]
    found = parameters(str(target))
    if found is None:
        return
    kind, added = _ADDED_ARGUMENTS[section]
    settings = [name for name in spec if name != "_target_"]
    for name in added:
        if name not in found.names and not found.takes_any:
            raise ConfigError(f"{section}._target_: {target} takes no argument {name!r}, which "
                              f"hypersweep gives every {kind} ({added[name]}); add that parameter")
    own = [name for name in found.names if name not in added]
    for name in settings:
        if name in added:
            raise ConfigError(f"{section}.{name}: hypersweep gives every {kind} {name} "
                              f"({added[name]}); remove the setting (~{section}.{name} on the "
                              f"command line)")
        if name not in found.names and not found.takes_any:
            raise ConfigError(f"{section}.{name}: {target} takes no argument {name!r} (it takes "
                              f"{', '.join(own) or 'none of its own'}); remove the setting "
                              f"(~{section}.{name} on the command line) or add the parameter")
    for name in found.required:
        if name not in settings and name not in added:
            raise ConfigError(f"{section}.{name}: {target} needs this argument, which the config "
                              f"does not set; set it ({section}.{name}: VALUE in its yaml, or "
                              f"+{section}.{name}=VALUE on the command line)")


def _values_given(dim: Dimension | None, value: Any) -> tuple:
    """The values a setting can take: its own, or those its dimension gives (none known for a
    continuous range)."""
    if dim is None:
        return (value,)
    return tuple(dim.grid_values()) if dim.is_discrete else ()


def _check_multiples(model: dict, dims: list[Dimension]) -> None:
    """Each model setting that must be a multiple of another, as the model declares it
    (MULTIPLE_OF, read from its source: a Transformer's width of its heads), is one for every
    pair of values the config and the space can give the two."""
    target = str(model.get("_target_"))
    multiples = class_constant(target, "MULTIPLE_OF")
    if not isinstance(multiples, dict):
        return
    tuned = {dim.path: dim for dim in dims}
    for name, divisor in multiples.items():
        if name not in model or divisor not in model:
            continue
        path, by_path = f"model.{name}", f"model.{divisor}"
        values = _values_given(tuned.get(path), model[name])
        divisors = _values_given(tuned.get(by_path), model[divisor])
        # Each against the other's own value first, so that the error names the one at fault.
        checks = [(path, [(value, model[divisor]) for value in values]),
                  (by_path, [(model[name], by) for by in divisors]),
                  (path if path in tuned else by_path, [(v, by) for v in values for by in divisors])]
        for key, pairs in checks:
            for value, by in pairs:
                if _is_int(value, 1) and _is_int(by, 1) and value % by:
                    need = f"needs a multiple of {by_path} (what {target} takes)"
                    if key not in tuned:
                        raise ConfigError(f"{path}: {need}, got {value} with {by_path}={by}; change "
                                          f"one of them")
                    raise ConfigError(f"space.{key}: {path} {need}, and the space can give "
                                      f"{path}={value} with {by_path}={by}; choose values that "
                                      f"divide evenly (type: choice)")


def _check_module_exists(key: str, config: dict) -> None:
    """Find a target's module without running it (a typo fails here, before torch and Ray)."""
    target = str(get_path(config, key, None))
    module = target.rpartition(".")[0]
    try:
        found = bool(module) and importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is missing, or no package at all
        found = False
    if not found:
        raise ConfigError(f"{key}: cannot import {target!r} (no module {module!r}); give a dotted "
                          f"path to a class or function on the Python path")
