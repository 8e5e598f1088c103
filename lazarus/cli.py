"""The ``lazarus`` command line.

Subcommands are small functions registered on one argparse parser; each returns the process exit
code so ``main`` can be called from tests without spawning a process.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence

from lazarus import __version__


def _cmd_version(_args: argparse.Namespace) -> int:
    print(f"lazarus {__version__} (python {platform.python_version()})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="lazarus",
        description="Kubernetes operator that proves Velero backups can be restored.",
    )
    parser.add_argument("--version", action="version", version=f"lazarus {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    version = commands.add_parser("version", help="print the version and exit")
    version.set_defaults(handler=_cmd_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lazarus`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    return int(handler(args))
