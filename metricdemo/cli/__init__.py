"""Subcommands of `manage.py metrics`, one module each.

Each module defines `help` (one line), `add_arguments(parser)` and
`handle(command, options)`, where `command` is the running BaseCommand (for
`stdout`, `stderr` and `style`). Add a module to SUBCOMMANDS to expose it.
Modules that are not subcommands (such as `table`) hold what they share.
"""

SUBCOMMANDS: dict[str, str] = {
    "serve": "metricdemo.cli.serve",
    "check": "metricdemo.cli.check",
    "export": "metricdemo.cli.export",
    "import": "metricdemo.cli.importing",
    "list": "metricdemo.cli.listing",
    "grafana": "metricdemo.cli.grafana",
    "rules": "metricdemo.cli.rules",
}
