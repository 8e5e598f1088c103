"""A thread-safe cache of objects with indexes (client-go's ``cache.Indexer``).

Contract:

- Objects are plain dicts (parsed JSON) keyed ``namespace/name``, or ``name`` for cluster-scoped
  objects (``object_key``).
- **Cached objects are read-only.** ``get``, ``list`` and ``by_index`` return the cached dicts
  themselves, not copies (copying every read would cost more than the cache saves). A caller
  that wants to change an object (e.g. to write it back) must ``deep_copy`` it first; mutating a
  cached dict corrupts what every other reader sees and breaks the indexes.
- Every method is atomic with respect to the others (one lock).
- Indexes: ``namespace`` is built in; more are registered by name with an ``IndexFunc`` (an
  object's index values, e.g. ``label_index("velero.io/schedule-name")`` for "backups by
  schedule"), and queried with ``by_index(name, value)``.
- ``replace(items, resource_version)`` swaps in a fresh list and returns what changed, with
  objects that disappeared as ``DeletedFinalStateUnknown`` tombstones (the key and the last
  object we knew): their delete happened while nobody was watching, so the final state is
  unknown.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lazarus.informers.transport import Obj

__all__ = [
    "NAMESPACE_INDEX",
    "DeletedFinalStateUnknown",
    "IndexFunc",
    "Replaced",
    "Store",
    "deep_copy",
    "final_object",
    "label_index",
    "namespace_index",
    "object_key",
]

IndexFunc = Callable[[Obj], list[str]]
"""Returns the index values of an object (none, one or several)."""


@dataclass(frozen=True)
class DeletedFinalStateUnknown:
    """An object deleted while we were not watching: its key and the last state we cached."""

    key: str
    object: Obj


def object_key(obj: Obj | DeletedFinalStateUnknown) -> str:
    """The cache key: ``namespace/name``, or ``name`` for a cluster-scoped object.

    Accepts tombstones too, so delete handlers can key whatever they are given.
    """
    if isinstance(obj, DeletedFinalStateUnknown):
        return obj.key
    metadata = obj["metadata"]
    namespace = metadata.get("namespace")
    return f"{namespace}/{metadata['name']}" if namespace else str(metadata["name"])


def final_object(obj: Obj | DeletedFinalStateUnknown) -> Obj:
    """The object a delete handler was given, unwrapping a tombstone."""
    return obj.object if isinstance(obj, DeletedFinalStateUnknown) else obj


def deep_copy(value: Any) -> Any:
    """Copy a parsed-JSON value (dicts, lists, scalars) for a caller that wants to change it.

    Faster than ``copy.deepcopy`` because JSON has no cycles, no shared references worth keeping
    and no mutable leaves.
    """
    if isinstance(value, dict):
        return {key: deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [deep_copy(item) for item in value]
    return value


NAMESPACE_INDEX = "namespace"


def namespace_index(obj: Obj) -> list[str]:
    """Index values of the built-in ``namespace`` index (none for cluster-scoped objects)."""
    namespace = obj["metadata"].get("namespace")
    return [namespace] if namespace else []


def label_index(label: str) -> IndexFunc:
    """An index on the value of one label, e.g. ``velero.io/schedule-name`` on Backups."""

    def index(obj: Obj) -> list[str]:
        value = (obj["metadata"].get("labels") or {}).get(label)
        return [value] if value is not None else []

    return index


@dataclass
class Replaced:
    """What ``Store.replace`` changed, in the order handlers should hear of it."""

    added: list[Obj] = field(default_factory=list)
    updated: list[tuple[Obj, Obj]] = field(default_factory=list)
    """``(old, new)`` pairs for keys present before and after (same resourceVersion or not)."""
    deleted: list[DeletedFinalStateUnknown] = field(default_factory=list)


class Store:
    """Thread-safe keyed cache with indexes (see the module docstring)."""

    def __init__(self, indexers: Mapping[str, IndexFunc] | None = None) -> None:
        """Create an empty store with the ``namespace`` index and ``indexers``."""
        self._lock = threading.Lock()
        self._items: dict[str, Obj] = {}
        self._index_funcs: dict[str, IndexFunc] = {NAMESPACE_INDEX: namespace_index}
        self._indices: dict[str, dict[str, set[str]]] = {NAMESPACE_INDEX: {}}
        self._resource_version = ""
        if indexers:
            self.add_indexers(indexers)

    @property
    def resource_version(self) -> str:
        """The resourceVersion of the list last given to ``replace`` (``""`` before any)."""
        with self._lock:
            return self._resource_version

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Register more indexes by name and index the objects already cached."""
        with self._lock:
            for name in indexers:
                if name in self._index_funcs:
                    raise ValueError(f"index {name!r} already exists")
            for name, func in indexers.items():
                self._index_funcs[name] = func
                self._indices[name] = {}
                for key, obj in self._items.items():
                    self._index_one(name, key, obj)

    def add(self, obj: Obj) -> Obj | None:
        """Cache ``obj`` (replacing any object with its key); return the one it replaced."""
        key = object_key(obj)
        with self._lock:
            return self._put(key, obj)

    update = add
    """Same as ``add``: the store does not care whether the key was there."""

    def delete(self, obj: Obj) -> Obj | None:
        """Drop the object with ``obj``'s key; return what was cached (``None``: nothing)."""
        key = object_key(obj)
        with self._lock:
            return self._pop(key)

    def replace(self, items: Iterable[Obj], resource_version: str) -> Replaced:
        """Make the cache exactly ``items``; return the adds, updates and tombstones."""
        fresh = {object_key(obj): obj for obj in items}
        changes = Replaced()
        with self._lock:
            for key in [key for key in self._items if key not in fresh]:
                gone = self._pop(key)
                assert gone is not None
                changes.deleted.append(DeletedFinalStateUnknown(key, gone))
            for key, obj in fresh.items():
                old = self._put(key, obj)
                if old is None:
                    changes.added.append(obj)
                else:
                    changes.updated.append((old, obj))
            self._resource_version = resource_version
        return changes

    def get(self, obj: Obj) -> Obj | None:
        """The cached object with ``obj``'s key (read-only), or ``None``."""
        return self.get_by_key(object_key(obj))

    def get_by_key(self, key: str) -> Obj | None:
        """The cached object under ``key`` (read-only), or ``None``."""
        with self._lock:
            return self._items.get(key)

    def by_index(self, index_name: str, value: str) -> list[Obj]:
        """The cached objects (read-only) whose ``index_name`` values include ``value``."""
        with self._lock:
            keys = self._index(index_name).get(value, ())
            return [self._items[key] for key in keys]

    def index_keys(self, index_name: str, value: str) -> list[str]:
        """The keys of the objects ``by_index`` would return."""
        with self._lock:
            return list(self._index(index_name).get(value, ()))

    # Below every method annotated with the builtin ``list``: in the class body, the name ``list``
    # means this method from here on.
    def list(self) -> list[Obj]:
        """Every cached object (read-only), in no particular order."""
        with self._lock:
            return list(self._items.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    # Under self._lock from here on.

    def _index(self, name: str) -> dict[str, set[str]]:
        try:
            return self._indices[name]
        except KeyError:
            raise KeyError(f"no index named {name!r}") from None

    def _put(self, key: str, obj: Obj) -> Obj | None:
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        for name in self._index_funcs:
            self._index_one(name, key, obj)
        return old

    def _pop(self, key: str) -> Obj | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _index_one(self, name: str, key: str, obj: Obj) -> None:
        index = self._indices[name]
        for value in self._index_funcs[name](obj):
            index.setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, func in self._index_funcs.items():
            index = self._indices[name]
            for value in func(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
