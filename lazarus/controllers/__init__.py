"""Controllers: each reconciles one kind of object from the informer cache, idempotently."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lazarus.controllers.context import ControllerFactory


def controller_factories() -> list[ControllerFactory]:
    """The controllers ``lazarus run`` starts, in start order (imported lazily: they pull in
    the whole runtime)."""
    from lazarus.controllers.backuptrigger import backup_trigger_controller
    from lazarus.controllers.policy import policy_controller
    from lazarus.controllers.restoretest import restore_test_controller

    return [restore_test_controller, backup_trigger_controller, policy_controller]
