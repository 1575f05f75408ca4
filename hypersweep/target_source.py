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
    defaults: dict[str, Any]  # the defaults written as literals (`width=8`), by parameter


def _module_tree(module: str) -> ast.Module | None:
    """The parsed source of a module, found without running it; None when it cannot be read."""
    try:
        spec = importlib.util.find_spec(module)
        with open(spec.origin) as handle:
            return ast.parse(handle.read())
    except (AttributeError, ImportError, OSError, SyntaxError, TypeError, ValueError):
        return None


def _bound_names(node: ast.stmt) -> list[str]:
    """The names a top-level statement binds (a class, a function, an assignment or an import)."""
    if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
        return [node.name]
    if isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return [target.id for target in targets if isinstance(target, ast.Name)]
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [alias.asname or alias.name.split(".")[0] for alias in node.names]
    return []


def _binding(target: str) -> tuple[ast.stmt, ast.Module] | tuple[None, None]:
    """The last top-level statement of the target's module that binds its name, with the module's
    tree; (None, None) when there is none or the source cannot be read."""
    module, _, name = target.rpartition(".")
    tree = _module_tree(module)
    found = None
    for node in tree.body if tree else []:
        if name in _bound_names(node):
            found = node
    return (found, tree) if found else (None, None)


def defined_in_source(target: str) -> bool:
    """Whether the source of the target's module binds its name at the top level."""
    return _binding(target)[0] is not None


def parameters(target: str) -> Parameters | None:
    """The keyword parameters of a function, or of a class's own `__init__`, that its module
    defines at the top level; None when the source does not say (a name bound by an assignment
    or an import, a decorated class, an inherited or decorated constructor, positional-only
    parameters)."""
    node, _ = _binding(target)
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
    written = list(zip(positional[first_default:], args.defaults, strict=True))
    written += [(arg, default) for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True)
                if default is not None]
    return Parameters(names=tuple(arg.arg for arg in positional + args.kwonlyargs),
                      required=tuple(required), takes_any=args.kwarg is not None,
                      defaults={arg.arg: value for arg, default in written
                                if (value := _literal(default)) is not _NOT_LITERAL})


_NOT_LITERAL = object()


def _literal(node: ast.expr) -> Any:
    """The value a literal expression writes (`8`, `("relu", "gelu")`); _NOT_LITERAL otherwise."""
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        return _NOT_LITERAL


class _InlineModuleConstants(ast.NodeTransformer):
    """Replaces each name that the module binds to a literal at the top level by that literal,
    so that `CHOICES = {"norm": NORMS}` reads as the tuple NORMS holds."""

    def __init__(self, tree: ast.Module):
        self.values = {}
        for node in tree.body:
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                for name in _bound_names(node):
                    self.values[name] = node.value

    def visit_Name(self, node: ast.Name) -> ast.expr:  # noqa: N802 (ast's naming)
        return self.values.get(node.id, node)


def class_constant(target: str, name: str) -> Any:
    """The literal value a class that the target's module defines at the top level assigns to
    `name` in its body (`INPUT_DIMS = ("length",)`), where a name the module binds to a literal
    stands for its value; None when there is none, or not a literal."""
    node, tree = _binding(target)
    if not isinstance(node, ast.ClassDef):
        return None
    for item in node.body:
        if isinstance(item, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name
                                                for t in item.targets):
            value = _literal(_InlineModuleConstants(tree).visit(item.value))
            return None if value is _NOT_LITERAL else value
    return None
