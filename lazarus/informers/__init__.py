"""Informers: list/watch reflectors feeding thread-safe caches and event handlers.

Mirrors client-go's ``tools/cache``. The pieces, each in its own module:

- ``resource``: ``Query`` (a resource in one namespace or all, with selectors); ``Resource`` and
  the catalogue of resources Lazarus watches live below, in ``lazarus.kube.resources`` (re-exported).
- ``transport``: ``ListerWatcher``, the LIST-page / WATCH-stream contract, and ``RestTransport``,
  which implements it on one ``kubernetes.client.ApiClient`` with plain-dict JSON.
- ``backoff``: exponential backoff with jitter for retrying failed lists and watches.
- ``store``: ``Store``, the thread-safe indexed cache of read-only dicts, and tombstones.
- ``reflector``: ``Reflector``, the LIST-then-WATCH loop that keeps a store current.
- ``informer``: ``SharedInformer``, a reflector + store + handlers run off the watch thread.
- ``factory``: ``SharedInformerFactory``, one informer per query, shared by every controller.

Typical use::

    factory = SharedInformerFactory.for_api_client(api_client)
    backups = factory.informer_for(BACKUPS, namespace="velero")
    backups.add_indexers({"schedule": label_index("velero.io/schedule-name")})
    backups.add_event_handler(on_add=enqueue, on_update=lambda old, new: enqueue(new), on_delete=enqueue)
    factory.start()
    factory.wait_for_cache_sync(timeout=60)
"""

from lazarus.informers.factory import SharedInformerFactory
from lazarus.informers.informer import DEFAULT_RESYNC_PERIOD, EventHandler, SharedInformer, is_resync
from lazarus.informers.reflector import Reflector
from lazarus.informers.resource import Query
from lazarus.informers.store import (
    NAMESPACE_INDEX,
    DeletedFinalStateUnknown,
    Store,
    deep_copy,
    final_object,
    label_index,
    object_key,
)
from lazarus.informers.transport import ApiError, ListerWatcher, Obj, RestTransport
from lazarus.kube.resources import (
    BACKUP_TEST_POLICIES,
    BACKUPS,
    CONFIG_MAPS,
    DAEMON_SETS,
    DEPLOYMENTS,
    DOWNLOAD_REQUESTS,
    LAZARUS_RESTORE_TESTS,
    NAMESPACES,
    RESTORES,
    SCHEDULES,
    STATEFUL_SETS,
    Resource,
)

__all__ = [
    "BACKUPS",
    "BACKUP_TEST_POLICIES",
    "CONFIG_MAPS",
    "DAEMON_SETS",
    "DEPLOYMENTS",
    "DEFAULT_RESYNC_PERIOD",
    "DOWNLOAD_REQUESTS",
    "LAZARUS_RESTORE_TESTS",
    "NAMESPACES",
    "NAMESPACE_INDEX",
    "RESTORES",
    "SCHEDULES",
    "STATEFUL_SETS",
    "ApiError",
    "DeletedFinalStateUnknown",
    "EventHandler",
    "ListerWatcher",
    "Obj",
    "Query",
    "Reflector",
    "Resource",
    "RestTransport",
    "SharedInformer",
    "SharedInformerFactory",
    "Store",
    "deep_copy",
    "final_object",
    "is_resync",
    "label_index",
    "object_key",
]
