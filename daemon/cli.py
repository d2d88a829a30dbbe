"""Command line: `serve`, `accounts …`, `quota`, `--version`, `--help-env`."""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__, config, env_file, keys_store, log
from .accounts import commands as account_commands


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="antigravity-proxy",
        description="Serve Anthropic, OpenAI and Gemini clients through Google Antigravity accounts.",
        epilog="All configuration comes from AGPROXY_* environment variables: see --help-env.",
    )
    parser.add_argument("--version", action="version", version=f"antigravity-proxy {__version__}")
    parser.add_argument("--help-env", action="store_true", help="list every environment variable and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="run the daemon in the foreground")
    account_commands.add_parser(commands)
    keys_store.add_parser(commands)
    quota = commands.add_parser("quota", help="show each account's quota (asks the running daemon)")
    quota.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.help_env:
        print(config.env_table_markdown())
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    try:
        settings = config.load(env_file.environment(os.environ, config.secret_names()))
    except (config.ConfigError, env_file.EnvFileError) as exc:
        print(f"antigravity-proxy: {exc}", file=sys.stderr)
        return 2
    log.setup(settings.log_level, settings.log_format)
    if args.command == "accounts":
        return account_commands.run(args, settings)
    if args.command == "keys":
        return keys_store.run(args, settings)
    if args.command == "quota":
        from .handlers import quota

        return quota.run_cli(settings, as_json=args.json)
    from . import serve  # imports uvloop: only needed to serve

    return serve.run(settings)
