"""An in-memory ``LeaseLock`` with the API server's optimistic concurrency, for unit tests."""

from __future__ import annotations

from collections.abc import Callable

from lazarus.kube.client import ApiError
from lazarus.leaderelection import LeaseRecord


class MemoryLease:
    """A Lease store: ``update`` fails with 409 if the record changed since this client's ``get``.

    ``get_errors[n]`` is raised by the n-th ``get`` (counting from 1): a connection that fails.
    ``after_write`` is called after each successful write.
    """

    def __init__(self) -> None:
        self.record: LeaseRecord | None = None
        self.version = 0
        self.fail_updates = False
        self.gets = 0
        self.get_errors: dict[int, Exception] = {}
        self.after_write: Callable[[], object] = lambda: None

    def client(self) -> MemoryLeaseClient:
        return MemoryLeaseClient(self)


class MemoryLeaseClient:
    def __init__(self, store: MemoryLease) -> None:
        self.store = store
        self.read_version = -1

    def get(self, *, timeout: float = 0.0) -> LeaseRecord | None:
        self.store.gets += 1
        if self.store.gets in self.store.get_errors:
            raise self.store.get_errors[self.store.gets]
        self.read_version = self.store.version
        return self.store.record

    def create(self, record: LeaseRecord, *, timeout: float = 0.0) -> None:
        if self.store.record is not None:
            raise ApiError(409, "AlreadyExists")
        self._write(record)

    def update(self, record: LeaseRecord, *, timeout: float = 0.0) -> None:
        if self.store.fail_updates or self.read_version != self.store.version:
            raise ApiError(409, "Conflict")
        self._write(record)

    def _write(self, record: LeaseRecord) -> None:
        self.store.record = record
        self.store.version += 1
        self.read_version = self.store.version
        self.store.after_write()
