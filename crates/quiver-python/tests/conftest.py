"""Fixtures: the embedded engine in a temporary directory, and a real `quiver serve` for the HTTP client.

The server binary comes from `QUIVER_BIN`, else `$CARGO_TARGET_DIR/debug/quiver`, else the repository's
`target/debug/quiver` (build it with `cargo build -p quiver-cli`)."""

from __future__ import annotations

import itertools
import os
import pathlib
import socket
import subprocess
import time
import urllib.request

import pytest

import quiverdb

REPO = pathlib.Path(__file__).resolve().parents[3]


def quiver_bin() -> pathlib.Path:
    candidates = []
    if os.environ.get("QUIVER_BIN"):
        candidates.append(pathlib.Path(os.environ["QUIVER_BIN"]))
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(pathlib.Path(os.environ["CARGO_TARGET_DIR"]) / "debug" / "quiver")
    candidates.append(REPO / "target" / "debug" / "quiver")
    for c in candidates:
        if c.is_file():
            return c
    pytest.fail(f"no quiver binary (looked at {', '.join(map(str, candidates))}): run `cargo build -p quiver-cli`")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `quiver serve` child process on a free loopback port."""

    def __init__(self, data_dir: pathlib.Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(data_dir.parent / f"server-{self.port}.log", "wb")
        self.proc = subprocess.Popen(
            [str(quiver_bin()), "serve", "--data-dir", str(data_dir), "--bind", f"127.0.0.1:{self.port}",
             "--log-level", "warn", *extra],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"quiver serve exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("quiver serve did not become ready in 60 s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("server") / "data")
    yield s
    s.stop()


_names = itertools.count()


@pytest.fixture
def name():
    """A collection name no other test uses (the HTTP tests share one server)."""
    return f"c{os.getpid()}_{next(_names)}"


@pytest.fixture(params=["embedded", "http"])
def db(request, tmp_path):
    """The same API two ways: `quiverdb.open(dir)` and `quiverdb.Client(url)`."""
    if request.param == "embedded":
        d = quiverdb.open(tmp_path / "data")
        yield d
        d.close()
    else:
        srv = request.getfixturevalue("server")
        c = quiverdb.Client(srv.url)
        yield c
        c.close()
