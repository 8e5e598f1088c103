"""What to list and watch: a query on a resource (``lazarus.kube.resources``).

``Query`` is a resource plus the scope of one list/watch: one namespace or the whole cluster, and
optional label and field selectors. It is frozen and hashable: it is also the key under which the
informer factory shares informers.
"""

from __future__ import annotations

from dataclasses import dataclass

from lazarus.kube.resources import Resource

__all__ = ["Query"]


@dataclass(frozen=True)
class Query:
    """A resource and the scope of one list/watch on it."""

    resource: Resource
    namespace: str | None = None
    """Only this namespace; ``None``: every namespace (or a cluster-scoped resource)."""
    label_selector: str | None = None
    """A label selector in the API's string form, e.g. ``app.kubernetes.io/managed-by=lazarus``."""
    field_selector: str | None = None
    """A field selector in the API's string form, e.g. ``metadata.name=default``."""

    def __post_init__(self) -> None:
        # Fail at construction, not on the first request from a background thread.
        self.resource.collection_path(self.namespace)

    @property
    def path(self) -> str:
        """URL path of the collection this query lists and watches."""
        return self.resource.collection_path(self.namespace)

    def selector_params(self) -> list[tuple[str, str]]:
        """The selector query parameters, shared by list and watch requests."""
        params: list[tuple[str, str]] = []
        if self.label_selector:
            params.append(("labelSelector", self.label_selector))
        if self.field_selector:
            params.append(("fieldSelector", self.field_selector))
        return params

    def __str__(self) -> str:
        parts = [str(self.resource), self.namespace or "*"]
        parts += [f"{name}={value}" for name, value in self.selector_params()]
        return " ".join(parts)
