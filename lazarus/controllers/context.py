"""What a controller factory gets to build its controller from (``lazarus.operator`` wires it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lazarus.controllers.base import Controller
from lazarus.informers import SharedInformerFactory
from lazarus.kube.client import Rest
from lazarus.settings import Settings


@dataclass(frozen=True)
class Context:
    """The process's settings, REST client and shared informer factory; ``leading()``: whether
    this replica may act now, asked just before a side effect no two replicas may make at once
    (starting a test's checks, sending its notifications)."""

    settings: Settings
    rest: Rest
    informers: SharedInformerFactory
    leading: Callable[[], bool]


ControllerFactory = Callable[[Context], Controller]
