#!/usr/bin/env python
"""Django's command-line utility for administrative tasks.

Development settings unless DJANGO_SETTINGS_MODULE says otherwise (production:
DJANGO_SETTINGS_MODULE=melanoma_site.settings.production).
"""

import os
import sys

NOT_MIGRATED = "The database is not set up: run `make migrate` (or python manage.py migrate)."


def _is_missing_table(error: Exception) -> bool:
    """True for "the table does not exist" (SQLite's message, PostgreSQL's SQLSTATE 42P01), not other errors."""
    cause = error.__cause__
    if getattr(cause, "sqlstate", None) == "42P01" or getattr(cause, "pgcode", None) == "42P01":
        return True
    return "no such table" in str(error)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "melanoma_site.settings.development")
    from django.core.management import execute_from_command_line
    from django.db import OperationalError, ProgrammingError

    try:
        execute_from_command_line(sys.argv)
    except (OperationalError, ProgrammingError) as error:
        # A command run before `migrate` on a fresh clone: one line that says what to do, not a traceback.
        if not _is_missing_table(error):
            raise
        sys.exit(NOT_MIGRATED)


if __name__ == "__main__":
    main()
