"""What differs between the config a sweep started with and a launch's, and how to undo it.

A resume must run the sweep it resumes, so any difference refuses it: the message names each
difference and the overrides that bring the launch back to the saved sweep. A setting that
hypersweep added after the sweep started is absent from its saved config; the sweep ran as that
setting's default in conf/config.yaml does (a new setting's default keeps the old behaviour),
so the setting at its default is no difference. The same holds for a model's or data loader's
setting added to its yaml at the default its constructor or function gives it.
"""

import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from hypersweep.dotted import get_path
from hypersweep.target_source import parameters

BUILT_IN_CONFIG = Path(__file__).resolve().parent.parent / "conf" / "config.yaml"
ABSENT = object()  # a key one of the two configs does not have
MAX_LISTED = 4  # differences named in a message; more means another sweep, not an edit
# A string Hydra's override grammar reads back as that same string without quotes.
_PLAIN_STRING = re.compile(r"[A-Za-z_][\w./-]*")
_NOT_PLAIN = {"true", "false", "null", "inf", "nan"}


@cache
def built_in_defaults() -> dict:
    """conf/config.yaml's own values (no config group applied); empty when it is not there."""
    if not BUILT_IN_CONFIG.exists():
        return {}
    return yaml.safe_load(BUILT_IN_CONFIG.read_text()) or {}


def with_target_defaults(saved: dict, new: dict) -> dict:
    """`saved`, with each model or data setting that it lacks and `new` sets filled in with the
    default of the same target (read from its source): the sweep ran with that value."""
    filled = dict(saved)
    for section in ("model", "data"):
        old, now = saved.get(section), new.get(section)
        if not (isinstance(old, dict) and isinstance(now, dict)):
            continue
        if old.get("_target_") != now.get("_target_"):  # another target: its defaults say nothing
            continue
        found = parameters(str(old.get("_target_")))
        defaults = found.defaults if found else {}
        filled[section] = {**{key: defaults[key] for key in now if key not in old and key in defaults},
                           **old}
    return filled


def differences(saved: dict, new: dict, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted key, saved value, new value) for each leaf that differs; ABSENT for a missing key.

    A key missing from `saved` takes its built-in default, when it has one.
    """
    found = []
    for key in sorted(set(saved) | set(new)):
        path = f"{prefix}{key}"
        old = saved[key] if key in saved else get_path(built_in_defaults(), path, ABSENT)
        value = new.get(key, ABSENT)
        if isinstance(old, dict) and isinstance(value, dict):
            found += differences(old, value, path + ".")
        elif old != value:
            found.append((path, old, value))
    return found


def _override_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(_override_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}:{_override_value(item)}" for key, item in value.items()) + "}"
    text = str(value)
    if _PLAIN_STRING.fullmatch(text) and text.lower() not in _NOT_PLAIN:
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def describe(found: list[tuple[str, Any, Any]]) -> str:
    """`a: 1 -> 2, b: (not set) -> 3`: the first MAX_LISTED differences, and how many more."""
    listed = ", ".join(f"{key}: {_shown(old)} -> {_shown(new)}" for key, old, new in found[:MAX_LISTED])
    return f"{listed} and {len(found) - MAX_LISTED} more" if len(found) > MAX_LISTED else listed


def undoing_overrides(found: list[tuple[str, Any, Any]]) -> str | None:
    """The command-line overrides that bring the new config back to the saved one (`+` adds a
    key, `~` removes one); None when there are more differences than MAX_LISTED."""
    if len(found) > MAX_LISTED:
        return None
    return " ".join(_undoing_override(key, old, new) for key, old, new in found)


def _undoing_override(key: str, old: Any, new: Any) -> str:
    if old is ABSENT:
        return shlex.quote(f"~{key}")
    return shlex.quote(f"{'+' if new is ABSENT else ''}{key}={_override_value(old)}")


def _shown(value: Any) -> str:
    return "(not set)" if value is ABSENT else repr(value)
