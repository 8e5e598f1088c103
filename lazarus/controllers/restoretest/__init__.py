"""The restore-test controller: takes a ``LazarusRestoreTest`` from Pending to a verified,
measured and cleaned-up result.

Phases: ``Pending`` → ``Restoring`` → ``Verifying`` → ``Checking`` → ``Succeeded`` / ``Failed``,
then cleanup. Each sync does the next step that the cached state calls for and writes it to
status; the status write (or the watched object it created) brings the key back. Everything the
controller creates has a name derived from the test's UID (sandbox namespaces, the Velero Restore,
its resource-modifier ConfigMap), so a crash or a new leader at any point resumes without a second
restore and without leaking an object. A finalizer guarantees cleanup when the test is deleted;
sandboxes whose test is gone (or was recreated under the same name) are removed when seen.

Outcomes follow the controller contract: a user error (missing backup, unsafe restore, ...) ends
the test ``Failed`` with a reason and is not retried; API errors are raised and retried.

Modules: ``controller`` (informers in ``informers``; the only I/O, with its actuators
``writing``, ``creating``, ``deleting``, ``finishing``, ``reading``, ``reporting``, ``checkruns``)
and the phase functions, which read a ``view.TestView`` and return ``decisions``: ``admission``
(with ``slots``), ``restoring``, ``verifying``, ``checking``, ``cleanup``, ``retention``.
"""

from lazarus.controllers.restoretest.controller import RestoreTestReconciler, restore_test_controller

__all__ = ["RestoreTestReconciler", "restore_test_controller"]
