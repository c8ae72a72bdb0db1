"""A real cluster on 127.0.0.1: ``dask scheduler`` and two ``dask worker`` processes.

The scheduler runs in its own process with the hlg plugin preloaded, and the
array example's layer type (its reduction layer) installed. ``tests/`` is on
every process's path so that :mod:`tests.distributed.helpers` can count what
happens there.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "chunked_array.py"
DASK = Path(sys.executable).parent / "dask"
START_TIMEOUT = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """The processes of the test cluster, and how to reach them."""

    def __init__(self, log_dir: Path) -> None:
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            # Quiet, and no half-minute waits when something goes wrong.
            "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "10s",
            "DASK_DISTRIBUTED__SCHEDULER__WORK_STEALING": "False",
        }

    def _start(self, name: str, *args: str) -> None:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - kept open for the process
        proc = subprocess.Popen(
            [str(DASK), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.log_dir,
            start_new_session=True,
        )
        log.close()
        self.processes.append(proc)

    def start(self) -> None:
        port = self.address.rsplit(":", 1)[1]
        self._start(
            "scheduler",
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            port,
            "--no-dashboard",
            "--preload",
            "hlg.distributed",
            "--preload",
            str(EXAMPLE),
        )
        for i, resources in enumerate(["GPU=1", ""]):
            args = ["--resources", resources] if resources else []
            self._start(
                f"worker-{i}",
                "worker",
                self.address,
                "--host",
                "127.0.0.1",
                "--name",
                f"w{i}",
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--death-timeout",
                "60",
                *args,
            )

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.log_dir.glob("*.log"))
        )

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


# Package scope: the cluster's processes and the client's threads are gone before the
# rest of the suite runs, which counts threads and traces this process's memory.
@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="package")
def client(cluster: Cluster) -> Iterator[Any]:
    from tests.distributed import helpers

    try:
        client = distributed.Client(cluster.address, timeout=START_TIMEOUT, set_as_default=False)
        client.wait_for_workers(2, timeout=START_TIMEOUT)
    except Exception as err:
        pytest.fail(f"the test cluster did not start ({err}):\n{cluster.logs()}")
    client.run_on_scheduler(helpers.count_materializations)
    client.run(helpers.count_materializations)
    try:
        yield client
    finally:
        client.close(timeout=10)


@pytest.fixture
def workers(client: Any) -> dict[str, str]:
    """Worker name -> address."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    return {w["name"]: address for address, w in info.items()}
