"""Model versions in the object store, so that a worker host needs nothing on its disk but the code.

Registering a version (model_version_register) with STORAGE_URL=s3://... uploads its folder's files under
`models/<version>/<sha256>/` and records each file's SHA-256 on the row. A worker resolves the active version
with model_version_local_dir: the first time, it downloads the files into MELANOMA_MODEL_CACHE_DIR/<sha256>,
verifies every checksum, and only then makes the folder visible (one rename); later it finds the verified
folder. A tampered or truncated object never reaches the interpreter.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from classifier.models import ModelVersion
from lesion_model.model_card import ModelCardError

VERIFIED_MARKER = ".verified"
_CHUNK = 1024 * 1024


class ModelArtifactError(ModelCardError):
    """The stored model files are missing or do not match their recorded checksums."""


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _manifest_digest(files: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def model_artifact_upload(*, model_version: ModelVersion, model_dir: Path) -> dict:
    """Upload the folder's files (not already there) and record them on the row. Returns the artifact."""
    model_dir = Path(model_dir)
    files = {path.name: _sha256_file(path) for path in sorted(model_dir.iterdir()) if path.is_file()}
    digest = _manifest_digest(files)
    prefix = f"models/{model_version.version}/{digest}"
    for name in files:
        key = f"{prefix}/{name}"
        if not default_storage.exists(key):  # same content, same key: registering again uploads nothing
            with (model_dir / name).open("rb") as handle:
                default_storage.save(key, File(handle, name=name))
    artifact = {"sha256": digest, "prefix": prefix, "files": files}
    ModelVersion.objects.filter(pk=model_version.pk).update(artifact=artifact)
    model_version.artifact = artifact
    return artifact


def _download_verified(artifact: dict, target: Path) -> None:
    cache_root = target.parent
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=cache_root))
    try:
        for name, expected in artifact["files"].items():
            key = f"{artifact['prefix']}/{name}"
            digest = hashlib.sha256()
            try:
                with default_storage.open(key, "rb") as stored, (staging / name).open("wb") as local:
                    while chunk := stored.read(_CHUNK):
                        digest.update(chunk)
                        local.write(chunk)
            except FileNotFoundError as error:
                raise ModelArtifactError(f"The stored model file {key} is missing.") from error
            if digest.hexdigest() != expected:
                raise ModelArtifactError(f"The stored model file {key} does not match its SHA-256 checksum.")
        if _manifest_digest(artifact["files"]) != artifact["sha256"]:
            raise ModelArtifactError("The model's file list does not match its recorded SHA-256.")
        (staging / VERIFIED_MARKER).write_text(artifact["sha256"])
        try:
            os.rename(staging, target)  # atomic: another process sees the whole verified folder or none
        except OSError:
            if not (target / VERIFIED_MARKER).is_file():  # a concurrent download won the race: use its copy
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def model_version_local_dir(model_version: ModelVersion) -> Path:
    """The local folder to load `model_version` from: its cached, verified download when it is stored in the
    object store, else its registered path. Raises ModelArtifactError when the download cannot be verified."""
    from classifier.services.model_versions import model_version_resolve_path  # noqa: PLC0415

    artifact = model_version.artifact or {}
    if not artifact.get("sha256"):
        return model_version_resolve_path(model_version)
    target = Path(settings.MELANOMA_MODEL_CACHE_DIR) / artifact["sha256"]
    if not (target / VERIFIED_MARKER).is_file():
        _download_verified(artifact, target)
    return target


def model_artifact_check(model_version: ModelVersion) -> str | None:
    """For /healthz on a host without the model folder: None when every stored file is there, else why not."""
    artifact = model_version.artifact or {}
    for name in artifact.get("files", {}):
        key = f"{artifact['prefix']}/{name}"
        if not default_storage.exists(key):
            return f"The stored model file {key} is missing."
    return None
