"""Load: N signed-in users upload real photos through the JSON API of the real stack, then every prediction
is waited for. Prints, per concurrency level: uploads sent, accepted, completed, failed, lost (must be 0),
throughput, and p50/p95/p99 of the upload response time and of upload -> completed.

    .venv/bin/python -m bench.load                       # 1, 8 and 32 users, 64 uploads per level
    .venv/bin/python -m bench.load --users 8 --total 200 --images ../shared/derm/uploads
    .venv/bin/python -m bench.load --users 32 --storage s3 --broker rabbitmq --web-workers 2 --worker-concurrency 3

The stack (bench/realstack.py): PostgreSQL (a fresh database of its own, dropped afterwards), its own
redis-server on a free port, gunicorn (2 workers) with DEBUG off, one prefork Celery worker (2 processes).
--storage s3 keeps the photos in a SeaweedFS bucket of its own (STORAGE_URL=s3://..., loopback) instead of local
files; --broker rabbitmq uses a RabbitMQ node of its own as the Celery broker (Redis stays the cache).
The per-user upload rate limit (MELANOMA_UPLOAD_RATE_PER_MINUTE, default 30) is raised to 100000 for the run:
the point is to load the service, not to measure the limiter.

CPU ms per upload: the CPU time (user + system, /proc) the web processes (gunicorn and its workers), the worker
(Celery and its pool) and the S3 server spent during a level, divided by the uploads accepted. Unlike the rates it
hardly depends on what else the machine is doing, so it is the figure to compare on a shared machine: N cores at
100% serve about N * 1000 / (web + worker + the rest) uploads/s.

Upload -> completed is the row's `completed_at` (written by the worker) minus the client's wall clock just
before it sent the POST: one machine, one clock, and no polling delay in the figure. Everything is bounded:
each level stops waiting after --wait-s seconds and counts what has not finished as lost.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from bench.realstack import REPO, RealStack, log
from melanoma_site.stack import child_pids

DEFAULT_IMAGES = REPO.parent / "shared" / "derm" / "uploads"
FINISHED = ("done", "failed")


@dataclass
class Upload:
    user: int
    sent_at: float  # client wall clock before the POST
    responded_at: float
    status_code: int
    prediction_id: int | None
    error: str = ""


def load_images(folder: Path, limit: int = 12) -> list[tuple[str, bytes]]:
    found = sorted(path for path in folder.glob("*") if path.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if found:
        return [(path.name, path.read_bytes()) for path in found[:limit]]
    log(f"no images in {folder}: generating 1600x1200 lesion-like JPEGs")
    from PIL import Image  # noqa: PLC0415

    images = []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        pixels = np.clip(rng.normal([200, 160, 130], 20, (1200, 1600, 3)), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        images.append((f"generated-{seed}.jpg", buffer.getvalue()))
    return images


def tree_cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) of a process and all its descendants so far; children that have exited count
    through their parent's cutime/cstime."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    own = sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
    return own + sum(tree_cpu_s(child) for child in child_pids(pid))


def stack_cpu_s(stack: RealStack) -> dict[str, float]:
    web, worker = stack.web, stack.worker
    s3 = getattr(stack.s3, "process", None)
    return {
        "web": tree_cpu_s(web.pid if web else None),
        "worker": tree_cpu_s(worker.pid if worker else None),
        "s3": tree_cpu_s(s3.pid if s3 else None),
    }


def percentiles(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (math.nan, math.nan, math.nan)
    p50, p95, p99 = np.percentile(np.asarray(values, dtype=np.float64), [50, 95, 99])
    return float(p50), float(p95), float(p99)


async def log_in(client: httpx.AsyncClient, index: int, password: str) -> str:
    response = await client.post("/api/token/", data={"username": f"load{index:03d}", "password": password})
    response.raise_for_status()
    return response.json()["token"]


async def user_session(
    client: httpx.AsyncClient, index: int, token: str, uploads: int, images: list[tuple[str, bytes]]
) -> list[Upload]:
    """One person: uploads one photo after another (a closed loop: the next starts when the last answered)."""
    done: list[Upload] = []
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    for number in range(uploads):
        name, content = images[(index + number) % len(images)]
        sent_at = time.time()
        try:
            response = await client.post(
                "/api/predictions/",
                headers=headers,
                files={"image": (name, content, "image/jpeg")},
                data={"body_site": "trunk"},
            )
        except httpx.HTTPError as error:
            done.append(Upload(index, sent_at, time.time(), 0, None, f"{error.__class__.__name__}: {error}"))
            continue
        responded_at = time.time()
        if response.status_code == 202:
            done.append(Upload(index, sent_at, responded_at, 202, int(response.json()["id"])))
        else:
            done.append(Upload(index, sent_at, responded_at, response.status_code, None, response.text[:200]))
    return done


def wait_for_rows(stack: RealStack, ids: list[int], wait_s: float) -> dict[int, tuple[str, float, float | None]]:
    """id -> (status, created_at, completed_at) as epoch seconds, once all are finished or wait_s has passed."""
    wanted = set(ids)
    deadline = time.monotonic() + wait_s
    while True:
        rows = stack.query(
            "SELECT id, status, created_at, completed_at FROM classifier_prediction WHERE user_id IN "
            "(SELECT id FROM auth_user WHERE username LIKE %s)",
            ("load%",),
        )
        found = {
            row[0]: (row[1], _epoch(row[2]), _epoch(row[3]) if row[3] is not None else None)
            for row in rows
            if row[0] in wanted
        }
        unfinished = [pk for pk in wanted if found.get(pk, ("missing",))[0] not in FINISHED]
        if not unfinished or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


def _epoch(value) -> float:
    if isinstance(value, str):  # SQLite
        from datetime import datetime  # noqa: PLC0415

        value = datetime.fromisoformat(value)
    return value.timestamp()


async def run_level(stack: RealStack, users: int, total: int, images, wait_s: float) -> dict:
    per_user = max(1, math.ceil(total / users))
    limits = httpx.Limits(max_connections=users + 2, max_keepalive_connections=users + 2)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=120.0, limits=limits) as client:
        tokens = await asyncio.gather(*(log_in(client, index, stack.password) for index in range(users)))
        cpu_before = stack_cpu_s(stack)  # after the logins: password hashing is not upload work
        started = time.time()
        sessions = await asyncio.gather(
            *(user_session(client, index, token, per_user, images) for index, token in enumerate(tokens))
        )
    uploads = [upload for session in sessions for upload in session]
    upload_phase_s = max(upload.responded_at for upload in uploads) - started
    accepted = [upload for upload in uploads if upload.prediction_id is not None]
    rows = wait_for_rows(stack, [upload.prediction_id for upload in accepted], wait_s)
    cpu_after = stack_cpu_s(stack)
    cpu_ms = {
        role: (cpu_after[role] - cpu_before[role]) * 1000 / max(1, len(accepted)) for role in ("web", "worker", "s3")
    }

    completed = [u for u in accepted if rows.get(u.prediction_id, ("missing",))[0] == "done"]
    failed = [u for u in accepted if rows.get(u.prediction_id, ("missing",))[0] == "failed"]
    lost = [u for u in accepted if rows.get(u.prediction_id, ("missing",))[0] not in FINISHED]
    finished_at = [rows[u.prediction_id][2] for u in completed + failed if rows[u.prediction_id][2] is not None]
    response_ms = [(u.responded_at - u.sent_at) * 1000 for u in accepted]
    to_completed_ms = [(rows[u.prediction_id][2] - u.sent_at) * 1000 for u in completed]
    failure_reasons = sorted(
        {
            row[0]
            for row in stack.query(
                "SELECT DISTINCT error FROM classifier_prediction WHERE status = 'failed' AND error <> ''"
            )
        }
    )
    return {
        "failure_reasons": failure_reasons,
        "users": users,
        "sent": len(uploads),
        "accepted": len(accepted),
        "rejected": len(uploads) - len(accepted),
        "rejections": sorted({f"{u.status_code} {u.error[:80]}" for u in uploads if u.prediction_id is None}),
        "completed": len(completed),
        "failed": len(failed),
        "lost": len(lost),
        "upload_rate": len(accepted) / upload_phase_s if upload_phase_s > 0 else math.nan,
        "completion_rate": len(completed) / (max(finished_at) - started) if finished_at else math.nan,
        "response_ms": percentiles(response_ms),
        "to_completed_ms": percentiles(to_completed_ms),
        "cpu_ms": cpu_ms,
    }


def print_table(results: list[dict], header: str) -> None:
    print(header)
    print(
        "| users | sent | completed | failed | lost | uploads/s | completed/s "
        "| upload p50 / p95 / p99 ms | upload->completed p50 / p95 / p99 ms | CPU ms per upload: web / worker / S3 |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        response = " / ".join(f"{value:.0f}" for value in r["response_ms"])
        to_completed = " / ".join(f"{value:.0f}" for value in r["to_completed_ms"])
        cpu = " / ".join(f"{r['cpu_ms'][role]:.0f}" for role in ("web", "worker", "s3"))
        print(
            f"| {r['users']} | {r['sent']} | {r['completed']} | {r['failed']} | {r['lost']} | "
            f"{r['upload_rate']:.2f} | {r['completion_rate']:.2f} | {response} | {to_completed} | {cpu} |"
        )
        if r["failure_reasons"]:
            print(f"|  | failure reasons: {'; '.join(r['failure_reasons'])} |")
        if r["rejected"]:
            print(f"|  | rejected uploads: {r['rejected']}: {'; '.join(r['rejections'])} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1, 8, 32], help="concurrency levels")
    parser.add_argument("--total", type=int, default=64, help="uploads per level (split across the users)")
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="folder of photos to upload")
    parser.add_argument("--wait-s", type=float, default=300.0, help="longest wait for the predictions, per level")
    parser.add_argument("--model", type=Path, help="model folder to activate (default: the shipped model)")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument("--storage", choices=("local", "s3"), default="local", help="where the photos are kept")
    parser.add_argument("--broker", choices=("redis", "rabbitmq"), default="redis", help="the Celery broker")
    args = parser.parse_args(argv)

    images = load_images(args.images)
    log(f"{len(images)} photos, {sum(len(c) for _, c in images) / len(images) / 1024:.0f} KiB on average")
    stack = RealStack(
        users=max(args.users),
        web_workers=args.web_workers,
        worker_concurrency=args.worker_concurrency,
        extra_env={"MELANOMA_UPLOAD_RATE_PER_MINUTE": "100000"},
        model_dir=args.model.resolve() if args.model else None,
        broker=args.broker,
        storage=args.storage,
    )
    results = []
    with stack:
        model = stack.query("SELECT version FROM classifier_modelversion WHERE is_active")[0][0]
        for users in args.users:
            log(f"{users} concurrent users, {args.total} uploads")
            results.append(asyncio.run(run_level(stack, users, args.total, images, args.wait_s)))
            log(f"  -> {results[-1]['completed']} completed, {results[-1]['lost']} lost")
        database = stack.database
    load = os.getloadavg()
    header = (
        f"Load on {platform.node()}: {os.cpu_count()} CPUs, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB; {database}, "
        f"broker {args.broker}, storage {args.storage}, "
        f"gunicorn x{args.web_workers}, Celery prefork x{args.worker_concurrency}; model {model}; "
        f"photos: {args.images if args.images.is_dir() else 'generated'}; load average after: "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print_table(results, header)
    return 1 if any(r["lost"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
