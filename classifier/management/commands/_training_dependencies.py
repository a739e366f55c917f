"""Training commands need requirements-train.txt; on a runtime-only install they say so in one line.

`make run` installs requirements.txt only (the web process and the worker never need TensorFlow), so
`train_model` and `evaluate_model` import the training package inside handle(), after this check, instead
of failing with an ImportError traceback.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

from django.core.management.base import CommandError

TRAINING_REQUIREMENTS = "requirements-train.txt"
# Import name -> the requirements-train.txt package that provides it.
TRAINING_PACKAGES = {
    "tensorflow": "tensorflow-cpu",
    "keras": "keras",
    "sklearn": "scikit-learn",
    "matplotlib": "matplotlib",
    "tqdm": "tqdm",
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module blocked with sys.modules[name] = None
        return False


def require_training_dependencies(command: str, modules: Iterable[str] = TRAINING_PACKAGES) -> None:
    """CommandError naming the missing packages and the install line, unless every one of `modules` is there."""
    missing = [TRAINING_PACKAGES.get(module, module) for module in modules if not _installed(module)]
    if missing:
        raise CommandError(
            f"{command} needs the training dependencies ({', '.join(missing)} not installed): "
            f"pip install -r {TRAINING_REQUIREMENTS}"
        )
