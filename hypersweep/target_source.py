"""What a `_target_`'s source says about it, read without running its module.

The driver does not import the model's module: it imports torch (about a second and 180 MiB),
which only the trials need. Reading the source instead still finds a misspelt name, and the
arguments the target takes, before the sweep starts rather than as a TypeError in every trial.
"""

import ast
import importlib.util
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Parameters:
    """The parameters a class's constructor or a function takes by keyword."""

    names: tuple[str, ...]
    required: tuple[str, ...]  # those without a default
    takes_any: bool  # a **kwargs parameter takes every other keyword too


def _binding(target: str) -> ast.stmt | None:
    """The last top-level statement of the target's module that binds its name (a class, a
    function, an assignment or an import); None when there is none or the source cannot be read."""
    module, _, name = target.rpartition(".")
    try:
        spec = importlib.util.find_spec(module)
        with open(spec.origin) as handle:
            tree = ast.parse(handle.read())
    except (AttributeError, ImportError, OSError, SyntaxError, TypeError, ValueError):
        return None
    found = None
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            bound = [node.name]
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound = [target.id for target in targets if isinstance(target, ast.Name)]
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound = [alias.asname or alias.name.split(".")[0] for alias in node.names]
        else:
            continue
        if name in bound:
            found = node
    return found


def defined_in_source(target: str) -> bool:
    """Whether the source of the target's module binds its name at the top level."""
    return _binding(target) is not None


def parameters(target: str) -> Parameters | None:
    """The keyword parameters of a function, or of a class's own `__init__`, that its module
    defines at the top level; None when the source does not say (a name bound by an assignment
    or an import, a decorated class, an inherited or decorated constructor, positional-only
    parameters)."""
    node = _binding(target)
    if isinstance(node, ast.ClassDef) and not node.decorator_list:  # @dataclass writes its own
        inits = [item for item in node.body if isinstance(item, ast.FunctionDef) and item.name == "__init__"]
        if not inits or inits[-1].decorator_list:
            return None
        function, skipped = inits[-1], 1  # self
    elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.decorator_list:
        function, skipped = node, 0
    else:
        return None
    args = function.args
    if args.posonlyargs:
        return None
    positional = args.args[skipped:]
    # Defaults belong to the last positional parameters; keyword-only ones have None for none.
    first_default = len(positional) - len(args.defaults)
    required = [arg.arg for index, arg in enumerate(positional) if index < first_default]
    required += [arg.arg for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True)
                 if default is None]
    return Parameters(names=tuple(arg.arg for arg in positional + args.kwonlyargs),
                      required=tuple(required), takes_any=args.kwarg is not None)


def class_constant(target: str, name: str) -> Any:
    """The literal value a class that the target's module defines at the top level assigns to
    `name` in its body (`INPUT_DIMS = ("length",)`); None when there is none, or not a literal."""
    node = _binding(target)
    if not isinstance(node, ast.ClassDef):
        return None
    for item in node.body:
        if isinstance(item, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name
                                                for t in item.targets):
            try:
                return ast.literal_eval(item.value)
            except (ValueError, TypeError, SyntaxError):
                return None
    return None
