"""kombu's Redis transport, with one defect fixed: a worker must survive Redis going away mid-task.

With kombu 5.7.0 (the newest release) a worker that loses Redis while a task runs (acks_late: its message is
unacknowledged) and while the consumer waits in BRPOP for the next one dies with
`Unrecoverable error: AttributeError("'NoneType' object has no attribute 'hostname'")`:

1. Celery collects the broken connection: closing the channel reads the pending BRPOP reply first, which fails
   with a ConnectionError; kombu ignores it, but the channel is left half-closed, and the transport is detached
   from its connection (`transport.client = None`).
2. Celery then closes the connection again: the channel now goes on to restore its unacknowledged messages,
   builds a new Redis client from `transport.client.hostname`, and the AttributeError escapes every
   "ignore connection errors" guard. A task ending later acknowledges through the same detached channel and
   fails the same way.

Known in kombu's tracker as the family of "'NoneType' object has no attribute 'hostname'" reports (#582, #970)
with no fix for this path and no setting that avoids it. A channel whose connection is gone cannot reach the
broker: that is a connection error, and raising it as one lets kombu and Celery handle it as they already do
(log "Couldn't ack", reconnect). Nothing is lost: the unacknowledged message stays in Redis and comes back after
the visibility timeout; if Redis lost it too, the periodic sweep re-queues the row (classifier/tasks.py).

Used through CELERY_BROKER_TRANSPORT (settings/base.py) for redis:// broker URLs.
"""

from __future__ import annotations

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict:
        if self.connection.client is None:
            raise RedisConnectionError("The broker connection of this channel was closed (Redis went away).")
        # celery-types' kombu stubs leave out this private method that kombu's Channel has.
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]


class Transport(kombu_redis.Transport):
    Channel = Channel
