"""What a controller factory gets to build its controller from (``lazarus.operator`` wires it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lazarus.controllers.base import Controller
from lazarus.informers import SharedInformerFactory
from lazarus.kube.client import Rest
from lazarus.settings import Settings


class Leadership:
    """Whether this replica may act now: asked just before a side effect that no two replicas may
    make at once (starting a test's checks, sending its notifications).

    With leader election, the answer is the elector's (``follow``), and no until there is one:
    fail closed. Without it (``elected=False``: the only replica), always yes.
    """

    def __init__(self, elected: bool) -> None:
        self._elected = elected
        self._holds: Callable[[], bool] | None = None

    def follow(self, holds: Callable[[], bool]) -> None:
        """Take the answer from ``holds`` (the elector's ``holds_lease``)."""
        self._holds = holds

    def held(self) -> bool:
        if not self._elected:
            return True
        return self._holds is not None and self._holds()


@dataclass(frozen=True)
class Context:
    """The process's settings, REST client, shared informer factory and leadership."""

    settings: Settings
    rest: Rest
    informers: SharedInformerFactory
    leadership: Leadership


ControllerFactory = Callable[[Context], Controller]
