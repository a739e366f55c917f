"""Run code in a fresh process as the web process and the worker would, for the runtime-boundary tests.

`python -m tests.runtime_only imports [MODEL_DIR]`
    Imports every runtime module (lesion_model, every module of the project's Django apps, the project package:
    URLconf, Celery app, WSGI application, `make run` supervisor), scores one image with MODEL_DIR when given,
    and prints a JSON report of which training-only modules each import pulled in.
`python -m tests.runtime_only manage COMMAND [ARGS ...]`
    Runs `manage.py COMMAND ARGS` as on a runtime-only install: importing a package that only
    requirements-train.txt installs fails as if it were not installed.
"""

from __future__ import annotations

import importlib
import importlib.abc
import io
import json
import os
import pkgutil
import runpy
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Top-level import names of what requirements-train.txt adds to requirements.txt, plus our own training package.
TRAINING_ONLY_PACKAGES = ("tensorflow", "keras", "sklearn", "matplotlib", "tqdm")
FORBIDDEN_IN_RUNTIME = (*TRAINING_ONLY_PACKAGES, "training")


class _RuntimeOnlyInstall(importlib.abc.MetaPathFinder):
    """Makes training-only packages unimportable, as on an install of requirements.txt alone."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname.partition(".")[0] in TRAINING_ONLY_PACKAGES:
            raise ModuleNotFoundError(f"No module named {fullname!r} (runtime-only install)", name=fullname)
        return None


def _forbidden_loaded() -> set[str]:
    return {name for name in sys.modules if name.partition(".")[0] in FORBIDDEN_IN_RUNTIME}


def _walk(package: str) -> Iterator[str]:
    module = importlib.import_module(package)
    yield package
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=f"{package}."):
        yield info.name


def runtime_modules() -> Iterator[str]:
    """What the web process and the worker can import, in an order that needs Django set up first."""
    import django  # noqa: PLC0415 - after the caller chose the settings
    from django.apps import apps  # noqa: PLC0415
    from django.conf import settings  # noqa: PLC0415

    yield from _walk("lesion_model")
    django.setup()
    for app in apps.get_app_configs():
        path = Path(app.path).resolve()
        # Our apps only: a virtualenv inside the checkout (.venv/) holds the third-party ones.
        if path.is_relative_to(REPO) and "site-packages" not in path.parts:
            yield from _walk(app.name)
    # The project package: URLconf, Celery app, WSGI, `make run`'s supervisor. Settings are loaded already.
    project = settings.ROOT_URLCONF.partition(".")[0]
    yield from (name for name in _walk(project) if ".settings" not in name)
    yield settings.ROOT_URLCONF


def report_imports(model_dir: str | None) -> dict[str, object]:
    pulled_in: dict[str, list[str]] = {}
    imported: list[str] = []
    for name in runtime_modules():
        before = _forbidden_loaded()
        importlib.import_module(name)
        imported.append(name)
        if new := _forbidden_loaded() - before:
            pulled_in[name] = sorted(new)
    if model_dir:
        from PIL import Image  # noqa: PLC0415

        from lesion_model.scorer import MelanomaScorer  # noqa: PLC0415

        before = _forbidden_loaded()
        buffer = io.BytesIO()
        Image.new("RGB", (300, 200), (200, 150, 130)).save(buffer, format="JPEG")
        MelanomaScorer(Path(model_dir)).score_bytes(buffer.getvalue())
        if new := _forbidden_loaded() - before:
            pulled_in["MelanomaScorer.score_bytes"] = sorted(new)
    return {"imported": imported, "pulled_in": pulled_in, "loaded": sorted(_forbidden_loaded())}


def main(argv: list[str]) -> None:
    os.chdir(REPO)
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "melanoma_site.settings")
    if argv[:1] == ["imports"]:
        print(json.dumps(report_imports(argv[1] if len(argv) > 1 else None)))
    elif argv[:1] == ["manage"]:
        sys.meta_path.insert(0, _RuntimeOnlyInstall())
        sys.argv = ["manage.py", *argv[1:]]
        runpy.run_path(str(REPO / "manage.py"), run_name="__main__")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
