"""Health checks of a restored application: database queries, HTTP endpoints, a custom Job.

The one entry point is ``run_health_checks`` (``lazarus.checks.runner``): it runs every enabled
check of a test's ``spec.healthChecks`` against the test's sandbox namespaces and returns a
``HealthCheckReport`` whose ``status`` is ``status.healthChecks``. One module per kind of check:
``database`` (shared flow) with ``postgres``, ``mysql`` and ``mongodb`` (each imports its driver
only when a check of that type runs), ``http`` and ``job``; ``expectations`` judges query results
for all engines; ``context`` resolves namespaces, Services and Secrets for all of them.
"""

from lazarus.checks.context import PLACEHOLDER
from lazarus.checks.runner import HealthCheckReport, run_health_checks

__all__ = ["PLACEHOLDER", "HealthCheckReport", "run_health_checks"]
