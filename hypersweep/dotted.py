"""Reading and writing nested dicts by dotted path (`optim.lr`), the names used everywhere."""

from collections.abc import Iterator
from typing import Any

_MISSING = object()


def get_path(tree: dict, path: str, default: Any = _MISSING) -> Any:
    """Return the value at `path` in `tree`; `default` (or KeyError) when a part is missing."""
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is _MISSING:
                raise KeyError(path)
            return default
        node = node[part]
    return node


def has_path(tree: dict, path: str) -> bool:
    """Whether `path` names a value in `tree`."""
    absent = object()
    return get_path(tree, path, absent) is not absent


def set_path(tree: dict, path: str, value: Any) -> None:
    """Write `value` at `path` in `tree`, creating the dicts on the way."""
    *parents, leaf = path.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def nested(flat: dict[str, Any]) -> dict:
    """Turn {"optim.lr": 0.1} into {"optim": {"lr": 0.1}}."""
    tree: dict = {}
    for path, value in flat.items():
        set_path(tree, path, value)
    return tree


def leaves(tree: dict, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (dotted path, value) for every non-dict value in `tree`."""
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from leaves(value, path + ".")
        else:
            yield path, value
