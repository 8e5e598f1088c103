"""``lazarus baseline show|reset SOURCE``: inspect or reset the baseline of a backup source.

The same as reading or deleting its ConfigMap with kubectl (``lazarus.baseline.store``), without
having to know the ConfigMap's name.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TextIO

from lazarus.baseline.store import BaselineStore
from lazarus.kube.client import ApiError, Rest, new_api_client

EXIT_OK, EXIT_NONE, EXIT_ERROR = 0, 1, 2


def run_baseline(action: str, source: str, *, namespace: str, kubeconfig: str | None, out: TextIO, err: TextIO) -> int:
    """Show (as JSON: the newest good test's figures, and which good tests came before it) or
    reset the baseline of ``source``; 0 done, 1 there is none, 2 API error."""
    api = new_api_client(kubeconfig, pool_size=1)
    store = BaselineStore(Rest(api), namespace)
    try:
        if action == "reset":
            if not store.reset(source):
                print(f"no baseline for {source} ({store.location(source)})", file=out)
                return EXIT_NONE
            print(f"baseline of {source} reset: the next successful test sets a new one", file=out)
            return EXIT_OK
        stored = store.load(source)
    except ApiError as exc:
        print(f"lazarus baseline: {exc}", file=err)
        return EXIT_ERROR
    finally:
        api.close()
    if stored is None or stored.snapshot is None:
        print(f"no {'readable ' if stored else ''}baseline for {source} ({store.location(source)})", file=out)
        return EXIT_NONE
    earlier = [{"test": s.test, "backup": s.backup, "completion_time": s.completion_time} for s in stored.history]
    shown = {"configMap": store.location(source), **asdict(stored.snapshot), "history": earlier}
    print(json.dumps(shown, indent=2), file=out)
    return EXIT_OK
