"""The ``lazarus`` command line.

Subcommands are small functions registered on one argparse parser; each returns the process exit
code so ``main`` can be called from tests without spawning a process.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
from collections.abc import Sequence
from dataclasses import MISSING, fields

from lazarus import __version__
from lazarus.settings import Settings


def _cmd_version(_args: argparse.Namespace) -> int:
    print(f"lazarus {__version__} (python {platform.python_version()})")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    # Imported here: `lazarus version` and `--help` should not pay for the client and informers.
    from lazarus.controllers import controller_factories
    from lazarus.logconfig import configure
    from lazarus.operator import Operator

    overrides = {f.name: getattr(args, f.name) for f in fields(Settings)}
    try:
        settings = Settings.from_env(**overrides)
    except ValueError as exc:
        print(f"lazarus run: {exc}", file=sys.stderr)
        return 2
    configure(settings.log_level, None if settings.log_format == "auto" else settings.log_format == "json")
    operator = Operator(settings, controller_factories())
    operator.install_signal_handlers()
    return operator.run()


def _cmd_test(args: argparse.Namespace) -> int:
    from lazarus.automation.template import SCHEDULE_LABEL
    from lazarus.logconfig import configure
    from lazarus.testcmd import EXIT_ERROR, load_spec, run_test

    configure("warning", json_output=False)

    try:
        spec, labels = load_spec(args.spec)
    except (OSError, ValueError) as exc:
        print(f"lazarus test: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return run_test(
        args.backup,
        namespace=args.namespace,
        spec=spec,
        kubeconfig=args.kubeconfig,
        timeout=args.timeout,
        out=sys.stdout,
        labels={**labels, **({SCHEDULE_LABEL: args.schedule} if args.schedule else {})},
    )


def _cmd_report(args: argparse.Namespace) -> int:
    from lazarus.report import parse_since, run_report

    try:
        since = parse_since(args.since)
    except ValueError as exc:
        print(f"lazarus report: {exc}", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as files:
        out = sys.stdout if args.output is None else files.enter_context(open(args.output, "w", encoding="utf-8"))
        return run_report(
            since=since,
            output_format=args.format,
            namespace=args.namespace,
            velero_namespace=args.velero_namespace,
            cluster=args.cluster,
            kubeconfig=args.kubeconfig,
            out=out,
            err=sys.stderr,
        )


def _cmd_baseline(args: argparse.Namespace) -> int:
    from lazarus.baseline.command import run_baseline

    return run_baseline(
        args.action, args.source, namespace=args.namespace, kubeconfig=args.kubeconfig, out=sys.stdout, err=sys.stderr
    )


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per ``Settings`` field (``--lease-name`` for ``lease_name``), default: unset."""
    docs = _field_docs()
    for f in fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        type_name = str(f.type)
        default = f.default if f.default is not MISSING else "generated"
        help_text = f"{docs.get(f.name, '')} (default: {default})"
        if type_name.startswith("bool"):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            convert = {"int": int, "float": float}.get(type_name.split(" ")[0], str)
            parser.add_argument(flag, dest=f.name, type=convert, default=None, help=help_text)


def _field_docs() -> dict[str, str]:
    """The docstring under each ``Settings`` field, for --help."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(Settings))
    docs: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, following in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                docs[node.target.id] = " ".join(str(following.value.value).split())
    return docs


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
    run = commands.add_parser(
        "run",
        help="run the operator",
        description="Run the operator. Every setting can also be set as LAZARUS_<SETTING> in the environment.",
    )
    _add_settings_flags(run)
    run.set_defaults(handler=_cmd_run)
    test = commands.add_parser(
        "test",
        help="test one backup now and wait for the result",
        description="Create a LazarusRestoreTest for BACKUP, follow it until it ends and print the result. "
        "The operator (lazarus run) must be running. Exit status: 0 succeeded, 1 failed, 2 error, 3 timed out.",
    )
    test.add_argument("backup", help="name of the Velero Backup to test")
    test.add_argument("--spec", help="YAML file with the test spec (or a whole LazarusRestoreTest)")
    test.add_argument("--namespace", default="lazarus-system", help="namespace of the test (default: lazarus-system)")
    test.add_argument("--kubeconfig", help="kubeconfig (default: in-cluster, then the default kubeconfig)")
    test.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the result (default: 3600)")
    test.add_argument(
        "--schedule",
        help="count the test of a Backup no Schedule made as one of Schedule NAME's (source "
        "schedule/NAME: its metrics, and its baseline, which the test is compared with and, if it "
        "succeeds, becomes); a Backup made by a Schedule is always counted as that Schedule's",
    )
    test.set_defaults(handler=_cmd_test)
    report = commands.add_parser(
        "report",
        help="write evidence that backups are restore-tested (Markdown, HTML or JSON)",
        description="Read the LazarusRestoreTests kept in the cluster and write, per backup source, how many "
        "tests ran, the pass rate, RTO and RPO against the objectives, every failure with its reason and each "
        "test's timestamps. Read-only.",
    )
    report.add_argument("--since", default="90d", help="period to report on, e.g. 90d, 12h (default: 90d)")
    report.add_argument("--format", choices=["markdown", "html", "json"], default="markdown",
                        help="output format (default: markdown)")  # fmt: skip
    report.add_argument("--output", "-o", help="file to write (default: standard output)")
    report.add_argument("--namespace", help="only tests in this namespace (default: all namespaces)")
    report.add_argument("--velero-namespace", default="velero", help="namespace of Velero's Backups (default: velero)")
    report.add_argument("--cluster", default="", help="cluster name to print in the report")
    report.add_argument("--kubeconfig", help="kubeconfig (default: in-cluster, then the default kubeconfig)")
    report.set_defaults(handler=_cmd_report)
    baseline = commands.add_parser(
        "baseline",
        help="show or reset the baseline of a backup source",
        description="Show (as JSON) or reset (delete) the baseline restore tests of SOURCE are compared with: "
        "the figures of its newest successful test without drift. After a reset the next successful test sets "
        "a new baseline. Exit status: 0 done, 1 no baseline, 2 error.",
    )
    baseline.add_argument("action", choices=["show", "reset"])
    baseline.add_argument("source", help="the backup source: schedule/<name> or policy/<namespace>/<name>")
    baseline.add_argument(
        "--namespace", default="lazarus-system", help="the operator's namespace, where baselines are kept"
    )
    baseline.add_argument("--kubeconfig", help="kubeconfig (default: in-cluster, then the default kubeconfig)")
    baseline.set_defaults(handler=_cmd_baseline)
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
