"""Controllers: each reconciles one kind of object from the informer cache, idempotently."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lazarus.operator import ControllerFactory

# The controllers ``lazarus run`` starts, in start order.
CONTROLLERS: list[ControllerFactory] = []
