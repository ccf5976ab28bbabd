"""Subcommands of `manage.py metrics`, one module each.

Each module defines `help` (one line), `add_arguments(parser)` and
`handle(command, options)`, where `command` is the running BaseCommand (for
`stdout`, `stderr` and `style`). Add a module to SUBCOMMANDS to expose it.
"""

SUBCOMMANDS: dict[str, str] = {
    "grafana": "metricdemo.cli.grafana",
}
