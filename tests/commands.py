"""Run `manage.py metrics` in this process and read what it printed."""

import io
import json
import re

from django.core.management import call_command


def metrics(*args: str) -> str:
    """Run `manage.py metrics ARGS` in this process and return what it printed."""
    out = io.StringIO()
    call_command("metrics", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def table(text: str) -> list[list[str]]:
    """Split a printed table into rows of cells (columns are 2+ spaces apart)."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line]


def write(tmp_path, document) -> str:
    """Write a document as an export file and return its path."""
    path = tmp_path / "definitions.json"
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return str(path)
