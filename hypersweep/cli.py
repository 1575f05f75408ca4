"""The `hypersweep` command: `hypersweep [overrides...]` runs a sweep (launch.py);
`hypersweep report runs/<name>` writes the report of one."""

import sys


def main() -> None:
    """Dispatch to the report, or to the Hydra entry point for everything else."""
    if len(sys.argv) > 1 and sys.argv[1] == "report":
        from hypersweep.report import main as report

        sys.exit(report(sys.argv[2:]))
    from launch import run

    run()
