"""Run ``lazarus run`` as a real process for integration tests, as the install's ServiceAccount."""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.integration.install import operator_kubeconfig
from tests.integration.kube import wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class OperatorProcess:
    identity: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str) -> requests.Response:
        return requests.get(f"http://127.0.0.1:{self.port}{path}", timeout=5)

    def is_leader(self) -> bool:
        try:
            metrics = self.get("/metrics").text
        except requests.ConnectionError:
            return False
        return any(
            line.startswith("lazarus_leader_is_leader{") and line.endswith(" 1.0") for line in metrics.splitlines()
        )

    def answers(self) -> bool:
        assert self.process.poll() is None, f"lazarus run exited: {self.log.read_text()[-3000:]}"
        try:
            return self.get("/healthz").status_code == 200
        except requests.ConnectionError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


def start_operator(identity: str, log_dir: Path, *args: str, kubeconfig: str | None = None) -> OperatorProcess:
    """Start ``lazarus run`` with ``args`` and wait until it answers /healthz.

    It authenticates as the ServiceAccount of ``manifests/base`` with only the RBAC granted there
    (``tests.integration.install``), unless ``kubeconfig`` names another identity.
    """
    port = free_port()
    log = log_dir / f"{identity}.log"
    kubeconfig = kubeconfig or operator_kubeconfig(args)
    command = [
        sys.executable, "-m", "lazarus", "run", "--kubeconfig", kubeconfig, "--identity", identity,
        "--metrics-address", "127.0.0.1", "--metrics-port", str(port), "--log-format", "json", *args,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    operator = OperatorProcess(identity, port, process, log)
    try:
        wait_until(f"{identity} to answer /healthz", operator.answers, timeout=30)
    except BaseException:
        operator.stop()
        raise
    return operator
