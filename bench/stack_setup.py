"""`python -m bench.stack_setup ...`: Django-side set-up of a bench stack, run in the stack's environment by
bench/realstack.py (never in the process that measures):

    users PASSWORD COUNT [MODEL_DIR]   register the shipped models (MODEL_DIR activated instead when given) and
                                       create COUNT users load000... with PASSWORD; prints the active model
    activate DIR_OR_VERSION            register and activate a model folder, or activate a known version
    active-path                        print the folder of the active model
"""

from __future__ import annotations

import argparse
from pathlib import Path

import django


def create_users(password: str, count: int, model_dir: Path | None) -> str:
    from django.contrib.auth import get_user_model

    from classifier.models import ModelVersion
    from classifier.services.model_versions import model_version_register, model_versions_register_shipped

    model_versions_register_shipped()
    if model_dir is not None:  # a model chosen for the run wins over the shipped default
        model_version_register(model_dir=model_dir, activate=True)
    user_model = get_user_model()
    for index in range(count):
        user, created = user_model.objects.get_or_create(username=f"load{index:03d}")
        if created:
            user.set_password(password)
            user.save()
    return f"active model: {ModelVersion.objects.get(is_active=True).version}"


def activate(target: str) -> str:
    from classifier.models import ModelVersion
    from classifier.services.model_versions import model_version_activate, model_version_register

    if Path(target).is_dir():
        return model_version_register(model_dir=Path(target), activate=True).version
    return model_version_activate(model_version=ModelVersion.objects.get(version=target)).version


def active_path() -> str:
    from classifier.models import ModelVersion
    from classifier.services.model_versions import model_version_resolve_path

    return str(model_version_resolve_path(ModelVersion.objects.get(is_active=True)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stack_setup", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    users = commands.add_parser("users")
    users.add_argument("password")
    users.add_argument("count", type=int)
    users.add_argument("model_dir", type=Path, nargs="?")
    commands.add_parser("activate").add_argument("target")
    commands.add_parser("active-path")
    args = parser.parse_args(argv)

    django.setup()
    if args.command == "users":
        print(create_users(args.password, args.count, args.model_dir))
    elif args.command == "activate":
        print(activate(args.target))
    else:
        print(active_path())


if __name__ == "__main__":
    main()
