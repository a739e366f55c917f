"""A newcomer's first commands, as a fresh clone runs them: `manage.py` with nothing exported uses development
settings, `migrate` creates var/ itself, and a command run before `migrate` says so in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

NOT_MIGRATED = "The database is not set up: run `make migrate` (or python manage.py migrate)."


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    # Nothing of this test run leaks in: no settings module, database, secret key or var folder of its own.
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "MELANOMA_", "PYTEST_")) and key != "DATABASE_URL"
    }
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_migrate_on_a_fresh_clone_creates_the_var_folder(tmp_path: Path):
    var_dir = tmp_path / "not-there-yet" / "var"
    result = _manage("migrate", "--no-input", "-v", "0", MELANOMA_VAR_DIR=str(var_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (var_dir / "db.sqlite3").is_file()


def test_development_settings_are_the_default(tmp_path: Path):
    result = _manage("diffsettings", MELANOMA_VAR_DIR=str(tmp_path / "var"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DEBUG = True" in result.stdout
    assert "SETTINGS_MODULE = 'melanoma_site.settings.development'" in result.stdout


def test_a_command_before_migrate_says_so_in_one_line(tmp_path: Path):
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    result = _manage(
        "createsuperuser", "--no-input", "--username", "newcomer", "--email", "newcomer@example.org",
        MELANOMA_VAR_DIR=str(tmp_path / "var"), DATABASE_URL=f"sqlite:///{empty}",
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == NOT_MIGRATED
