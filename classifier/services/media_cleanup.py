"""Stored photos that no row refers to: a web process killed between saving the files and committing the row
(an out-of-memory kill, a deploy) leaves them behind, and nothing else would ever delete them.

The periodic cleanup (Celery beat, classifier.media_orphans_cleanup) deletes such files once they are older
than an hour: younger ones may belong to an upload whose row is still being committed.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings

from classifier.models import Prediction

logger = logging.getLogger(__name__)

# The folders prediction_create writes to (classifier/services/prediction_writes.py); nothing else is touched.
UPLOAD_FOLDERS = ("lesions", "thumbnails", "heatmaps")


def media_orphans_delete(*, older_than: timedelta) -> list[str]:
    """Delete files under the upload folders that no prediction refers to and that were last modified more
    than `older_than` ago; returns their storage names."""
    media_root = Path(settings.MEDIA_ROOT)
    cutoff = time.time() - older_than.total_seconds()
    candidates = [
        path
        for folder in UPLOAD_FOLDERS
        if (media_root / folder).is_dir()
        for path in (media_root / folder).rglob("*")
        if path.is_file() and path.stat().st_mtime < cutoff
    ]
    if not candidates:
        return []
    referenced = (
        set(Prediction.objects.values_list("image", flat=True))
        | set(Prediction.objects.values_list("thumbnail", flat=True))
        | set(Prediction.objects.values_list("heatmap", flat=True))
    )
    deleted = []
    for path in candidates:
        name = path.relative_to(media_root).as_posix()
        if name in referenced:
            continue
        path.unlink(missing_ok=True)
        deleted.append(name)
    if deleted:
        logger.info("Media cleanup: deleted %d orphan file(s): %s", len(deleted), ", ".join(deleted[:20]))
    return deleted
