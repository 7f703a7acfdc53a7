"""A real PostgreSQL server for the suite: ``initdb`` into a temporary directory, ``pg_ctl start``
on 127.0.0.1 (free port, unix socket in the same directory), once per session.

PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` system user
(created if missing) and every server command runs through ``runuser``. Without the binaries, and
without root to fall back on, the PostgreSQL half of the parametrized tests is skipped with the
reason -- except under ``CI=true``, where a missing server fails the run.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

SUPERUSER = "postgres"
_db_numbers = itertools.count(1)


@dataclass
class PgServer:
    """A running cluster: its data directory, port and a URL for each database."""

    bin_dir: Path
    data_dir: Path
    port: int
    run_as: str | None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def admin(self) -> sa.Engine:
        return sa.create_engine(self.url(), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)

    def create_database(self) -> str:
        name = f"hbopt_t{os.getpid()}_{next(_db_numbers)}"
        engine = self.admin()
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return name

    def drop_database(self, name: str) -> None:
        engine = self.admin()
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    def database_dir(self, name: str) -> Path:
        """The directory holding every relation file of database ``name``."""
        engine = self.admin()
        with engine.connect() as conn:
            oid = conn.execute(
                sa.text("SELECT oid FROM pg_database WHERE datname = :n"), {"n": name}
            ).scalar_one()
        engine.dispose()
        return self.data_dir / "base" / str(oid)


def postgres_bin_dir() -> Path | None:
    """Debian's newest ``/usr/lib/postgresql/<version>/bin``, else ``initdb`` on the PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).resolve().parent if on_path else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _service_user() -> str | None:
    """None when not root; else the ``postgres`` system user, created if missing."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SUPERUSER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SUPERUSER],
            check=True,
        )
    return SUPERUSER


def _run(cmd: list[str], run_as: str | None) -> None:
    if run_as is not None:
        cmd = ["runuser", "-u", run_as, "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not available: {reason} (run scripts/install-test-servers as root)")


@contextlib.contextmanager
def running_postgres() -> Iterator[PgServer]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        _unavailable("no initdb under /usr/lib/postgresql/*/bin or on the PATH")
        raise AssertionError("unreachable")
    run_as = _service_user()
    root = Path(tempfile.mkdtemp(prefix="hbopt-pg-"))
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data_dir, port = root / "data", _free_port()
    # Durability settings off: a throw-away cluster; CHECKPOINT still writes every page out.
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
    )
    try:
        _run(
            [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", SUPERUSER, "--auth=trust",
             "-E", "UTF8", "--locale=C", "--no-sync"],
            run_as,
        )  # fmt: skip
        _run(
            [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-l", str(root / "server.log"),
             "-o", options, "-w", "-t", "60", "start"],
            run_as,
        )  # fmt: skip
    except subprocess.CalledProcessError as e:
        log = root / "server.log"
        tail = log.read_text()[-2000:] if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        _unavailable(f"{' '.join(e.cmd[-3:])} failed: {e.stderr.strip()} {tail}")
    try:
        yield PgServer(bin_dir, data_dir, port, run_as)
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _run([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "stop"], run_as)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL cluster for the whole session."""
    with running_postgres() as server:
        yield server


def database_files(db_url: str, request: pytest.FixtureRequest) -> list[Path]:
    """Every file the database's rows live in, flushed to disk first (SQLite: the file and its
    journal; PostgreSQL: the relation files of the database after a CHECKPOINT)."""
    if db_url.startswith("sqlite"):
        path = Path(sa.make_url(db_url).database or "")
        return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
    server: PgServer = request.getfixturevalue("pg_server")
    admin = server.admin()
    with admin.connect() as conn:
        conn.execute(sa.text("CHECKPOINT"))
    admin.dispose()
    name = sa.make_url(db_url).database
    assert name is not None
    # pg_internal.init is the server's relation-cache file (catalog descriptors, no rows); the
    # server deletes and rewrites it whenever the catalog changes, so it can vanish mid-read
    return [
        p
        for p in server.database_dir(name).iterdir()
        if p.is_file() and p.name != "pg_internal.init"
    ]


def database_text(engine: sa.Engine) -> str:
    """Every row of every table as text, for looking for traces of deleted data."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.connect() as conn:
        rows = [row for table in metadata.sorted_tables for row in conn.execute(table.select())]
    return "\n".join(repr(tuple(row)) for row in rows)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database per test: a SQLite file, then a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'service.sqlite3'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = server.create_database()
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)
