"""Benchmarks of the controller runtime against the performance targets (``python -m bench``).

These print figures; they assert nothing and are not tests. One module per benchmark, each
exposing ``BENCHMARK`` (a ``bench.measure.Benchmark``):

- ``cold_sync``: 10,000 ConfigMaps listed into a fresh informer process: time to ``has_synced``
  and the process RSS afterwards.
- ``idle_rss``: RSS of an idle ``lazarus run`` process with empty caches.
- ``event_latency``: watch event → handler → worker ``sync`` start, under a burst of 1,000 updates.
- ``workqueue``: adds + gets per second through a ``RateLimitingQueue`` with 4 workers.
- ``restore_test``: a ``LazarusRestoreTest`` end to end against the real Velero, small and large
  application: API requests per validation run, operator overhead beyond Velero's restore time,
  test created → Velero Restore created.

Shared pieces: ``measure`` (figures, percentiles, RSS, child processes) and ``cluster`` (API
access, throw-away namespaces, bulk creation, a ``lazarus run`` process). Cluster benchmarks read
``KUBECONFIG``, create a namespace of their own and delete it (and wait until it is gone) even
when they fail.

Conventions: every target is an upper bound; percentiles are nearest-rank (the smallest sample
with at least p % of the samples at or below it; no interpolation); times are ``time.monotonic``,
which on Linux is one system-wide clock, so stamps from different processes compare.
"""
