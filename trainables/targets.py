"""Build objects from `_target_` specs in plain dicts, without Hydra (which stays in the driver)."""

import importlib
from typing import Any


def import_target(target: str) -> Any:
    """The object a dotted path such as `trainables.models.MLP` names."""
    module_name, _, attr = target.rpartition(".")
    if not module_name:
        raise ImportError(f"_target_ {target!r} needs a module path, e.g. my_pkg.MyNet")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImportError(f"_target_ {target!r}: module {module_name} has no {attr}") from None


def build(spec: dict, **extra: Any) -> Any:
    """Call spec["_target_"] with the spec's other keys and `extra` as keyword arguments."""
    arguments = {key: value for key, value in spec.items() if key != "_target_"}
    return import_target(spec["_target_"])(**arguments, **extra)
