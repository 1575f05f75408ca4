"""The `hypersweep` command: `hypersweep [overrides...]` runs a sweep (launch.py);
`hypersweep report runs/<name>` writes the report of one."""

import difflib
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

COMMANDS = ("report",)
EXIT_BAD_INPUT = 2  # as launch.py's config errors
_VERSIONS_OF = (("Ray", "ray"), ("torch", "torch"), ("Hydra", "hydra-core"))


def versions_text() -> str:
    """hypersweep's version and those of the parts a sweep's outcome depends on, read from the
    installed packages' metadata (importing Ray and torch would take seconds)."""

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "not installed"

    parts = ", ".join(f"{name} {installed(package)}" for name, package in _VERSIONS_OF)
    return f"hypersweep {installed('hypersweep')} ({parts}, Python {platform.python_version()})"


def _not_a_command(word: str) -> str:
    """The error for a first argument that is neither a command nor an override."""
    close = difflib.get_close_matches(word, COMMANDS, n=1)
    hint = f"did you mean: hypersweep {close[0]} ...? " if close else ""
    return (f"error: {word}: not a command nor a KEY=VALUE override; {hint}hypersweep KEY=VALUE ... "
            f"runs a sweep, hypersweep report runs/NAME writes its report")


def main() -> None:
    """Dispatch to the report, or to the Hydra entry point for everything else."""
    first = sys.argv[1] if len(sys.argv) > 1 else None
    if first == "report":
        from hypersweep.report import main as report

        sys.exit(report(sys.argv[2:]))
    # Hydra's arguments start with - (flags), + or ~, or hold = (overrides); a flag's value
    # comes after the flag. A bare word first is a misspelt command.
    if first is not None and not first.startswith(("-", "+", "~")) and "=" not in first:
        print(_not_a_command(first), file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    from launch import run

    run()
