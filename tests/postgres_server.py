"""A throwaway PostgreSQL server for the tests that share a sweep between machines.

It is Debian's `postgresql` package (installed by `.ci/run`), started from a fresh data folder on a free
loopback port with trust authentication and no fsync, and removed afterwards. PostgreSQL refuses to run
as root, so under root the server runs as the package's `postgres` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SERVER_USER = "postgres"


def postgres_bin() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server, yield its SQLAlchemy URL (postgresql://postgres@127.0.0.1:PORT/postgres), stop and remove it."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL's initdb was not found (install Debian's postgresql package)")
    folder = Path(tempfile.mkdtemp(prefix="gan-pg-"))  # under /tmp: the server user must be able to reach it
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam(SERVER_USER)
        os.chown(folder, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", SERVER_USER, "--"]
    data, port = folder / "data", _free_port()
    try:
        subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", SERVER_USER, "--auth=trust", "--no-sync", "-E", "UTF8"],
                       check=True, capture_output=True, timeout=120)
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "server.log"), "-w", "start"],
                       check=True, capture_output=True, timeout=120)
        try:
            yield f"postgresql://{SERVER_USER}@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
