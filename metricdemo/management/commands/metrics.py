"""Run `manage.py metrics <subcommand>`; the subcommands live in metricdemo.cli."""

from importlib import import_module

from django.core.management.base import BaseCommand, CommandError

from metricdemo.cli import SUBCOMMANDS


class Command(BaseCommand):
    """Dispatch to one module of metricdemo.cli per subcommand."""

    help = "Manage metricdemo's metric definitions."

    def add_arguments(self, parser) -> None:
        subparsers = parser.add_subparsers(
            dest="subcommand", metavar="subcommand", required=True
        )
        for name, path in SUBCOMMANDS.items():
            module = import_module(path)
            sub = subparsers.add_parser(name, help=module.help, description=module.help)
            module.add_arguments(sub)

    def handle(self, *args, **options) -> None:
        name = options["subcommand"]
        if name not in SUBCOMMANDS:
            raise CommandError(f"Unknown subcommand {name!r}.")
        import_module(SUBCOMMANDS[name]).handle(self, options)
