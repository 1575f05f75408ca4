"""Hydra's errors about the command line in one line, as hypersweep's own errors are.

A misspelt setting, a config group option that does not exist or an override Hydra cannot parse
took Hydra several lines (the options one per line, its config search path, a hint about stack
traces) and exit code 1. Now it is `error: KEY: what is wrong; the fix`, exit code 2, as for every
other bad input. HYDRA_FULL_ERROR=1 still shows Hydra's own report with its stack trace.
"""

import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException

from hypersweep.replaced import replaced

EXIT_BAD_INPUT = 2  # as launch.py's config errors
_UNKNOWN_KEY = re.compile(r"Could not override '([^']+)'\.\s*To append to your config use (\S+)")


def one_line(error: ConfigCompositionException | OverrideParseException) -> str:
    """The message of one of Hydra's command-line errors, in one line that names the key."""
    if isinstance(error, MissingConfigException) and error.options and error.missing_cfg_file:
        group, _, option = error.missing_cfg_file.rpartition("/")
        return f"{group}: no option '{option}'; choose one of {', '.join(error.options)}"
    text = str(error)
    if unknown := _UNKNOWN_KEY.search(text):
        key, append = unknown.groups()
        missing = getattr(error.__cause__, "full_key", None)
        if missing and missing.startswith(f"{key}."):
            # The key exists: Hydra merges a {...} value into it, and the merge met a new field.
            return (f"{key}: a {{...}} value is merged into the one there, which has no "
                    f"{missing[len(key) + 1:]!r}; to replace it whole, remove it first: "
                    f"'~{key}' '{append}'")
        return (f"{key}: no such setting; check its spelling (python launch.py --cfg job shows every "
                f"setting), or add a new one with {append}")
    text = text.split("Config search path:")[0]
    lines = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return f"{error.override}: {lines}" if isinstance(error, OverrideParseException) else lines


def group_value_one_line(error: ValueError) -> str | None:
    """One line for Hydra's ValueError about a config group set to something other than an
    option's name (`model=null`, `search=4`); None for any other ValueError.

    Hydra's message does not say which group: that is read from the frame that raised it, which
    was reading that override, with the group's options from its config repository.
    """
    if not str(error).startswith("Config group override"):
        return None
    trace = error.__traceback__
    while trace is not None and trace.tb_next is not None:
        trace = trace.tb_next
    found = trace.tb_frame.f_locals if trace is not None else {}
    override, repo = found.get("override"), found.get("repo")
    if override is None:
        return str(error)
    group = override.key_or_group.lstrip("~")
    options = repo.get_group_options(group) if repo is not None else []
    choose = f"choose one of {', '.join(options)}" if options else "python launch.py --help lists its options"
    return f"{group}: needs the name of one of its options, got {override.input_line!r}; {choose}"


@contextmanager
def hydra_errors_in_one_line() -> Iterator[None]:
    """Inside the block, Hydra's composition and override errors end the command with one line
    on stderr and exit code 2."""
    from hydra._internal import utils

    report = utils.run_and_report

    def run_and_report(func: Callable[[], Any]) -> Any:
        def run_or_say_in_one_line() -> Any:
            try:
                return func()
            except (ConfigCompositionException, OverrideParseException, ValueError) as error:
                line = group_value_one_line(error) if isinstance(error, ValueError) else one_line(error)
                if line is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                print(f"error: {line}", file=sys.stderr)
                sys.exit(EXIT_BAD_INPUT)  # SystemExit goes through Hydra's report untouched

        return report(run_or_say_in_one_line)

    with replaced(utils, "run_and_report", run_and_report):
        yield
