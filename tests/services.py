"""Real servers the scale-out tests run against, each on a free loopback port in a scratch folder, stopped at the
end: PostgreSQL (Debian's `postgresql`), nginx (Debian's `nginx`), `chroma run`, and `assistant serve` processes.

Each `start_*` returns None with a reason when the program is not installed, so a test can skip saying why;
scripts/setup.sh installs them on CI."""
from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    """Poll `check()` until it returns a truthy value; fail with the program's log when it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            got = check()
            if got:
                return got
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not start within {timeout:.0f} s" + (f":\n{tail}" if tail else ""))


def stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


# ---- PostgreSQL ------------------------------------------------------------------------------------------

def postgres_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class Postgres:
    url: str
    port: int
    data_dir: Path
    proc: subprocess.Popen
    _runas: list[str] = field(default_factory=list)


@contextmanager
def postgres() -> Iterator[Postgres | str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1:<free port> (trust auth, loopback only); yields it, or a
    reason string when PostgreSQL is not installed. Runs as the `postgres` user when we are root (initdb refuses
    root)."""
    bindir = postgres_bindir()
    if bindir is None:
        yield "PostgreSQL is not installed (apt-get install postgresql)"
        return
    runas: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="pna-pg-"))
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            yield "running as root and there is no postgres user to run PostgreSQL as"
            return
        os.chown(base, pw.pw_uid, pw.pw_gid)
        runas = ["runuser", "-u", "postgres", "--"]
    data, log = base / "data", base / "server.log"
    subprocess.run([*runas, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                    "--encoding=UTF8", "--no-sync", "--no-instructions"],
                   check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen(
        [*runas, str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
         "-c", f"unix_socket_directories={base}", "-c", "fsync=off", "-c", "max_connections=100"],
        stdout=subprocess.DEVNULL, stderr=open(log, "wb"), start_new_session=True)
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def ready() -> bool:
        import psycopg

        try:  # refused until the server listens: a slow start on a busy machine is not a failure
            with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    try:
        wait_for(ready, 60, "PostgreSQL", proc, log)
        yield Postgres(url=url, port=port, data_dir=data, proc=proc, _runas=runas)
    finally:
        stop(proc)
        shutil.rmtree(base, ignore_errors=True)


def create_database(pg: Postgres, name: str) -> str:
    """A new empty database on the test cluster; returns its URL."""
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port={pg.port} user=postgres dbname=postgres", autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    return pg.url.rsplit("/", 1)[0] + f"/{name}"


# ---- assistant serve ---------------------------------------------------------------------------------------

@dataclass
class Replica:
    name: str
    port: int
    proc: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def assistant_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_WAIT_POLICY="passive", HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False",
               GRADIO_ANALYTICS_ENABLED="False", PYTHONPATH=str(REPO_ROOT))
    env.update(overrides)
    return env


def start_replica(name: str, workdir: Path, env: dict[str, str], *args: str, timeout: float = 120) -> Replica:
    """`assistant serve` as its own process (as a deployment runs it), ready when /healthz says 200."""
    port = free_port()
    log = workdir / f"{name}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        env=env, cwd=REPO_ROOT, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    replica = Replica(name, port, proc, log)
    try:
        wait_for(lambda: httpx.get(replica.url + "/healthz", timeout=5).status_code == 200, timeout,
                 f"assistant replica {name}", proc, log)
    except BaseException:
        stop(proc)
        raise
    return replica


# ---- nginx -------------------------------------------------------------------------------------------------

NGINX_CONF = REPO_ROOT / "deploy" / "nginx.conf"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or (str(Path("/usr/sbin/nginx")) if Path("/usr/sbin/nginx").exists() else None)


def render_nginx_conf(listen_port: int, upstreams: list[int], workdir: Path) -> Path:
    """deploy/nginx.conf with this test's ports and scratch paths: the same file a deployment uses."""
    text = NGINX_CONF.read_text(encoding="utf-8")
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;" for p in upstreams)
    parts = re.split(r"    # upstream-servers-begin\n.*?    # upstream-servers-end", text, flags=re.S)
    text = f"    # upstream-servers-begin\n{servers}\n    # upstream-servers-end".join(parts)
    if os.geteuid() == 0:
        text = text.replace("user www-data;", "user root;")  # the scratch folders are root's alone
    text = text.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{listen_port};")
    text = text.replace("/var/log/nginx/assistant", str(workdir / "nginx"))
    text = text.replace("pid /run/nginx-assistant.pid;", f"pid {workdir / 'nginx.pid'};")
    text = text.replace("/var/lib/nginx/assistant", str(workdir / "nginx-tmp"))
    (workdir / "nginx-tmp").mkdir(exist_ok=True)
    out = workdir / "nginx.conf"
    out.write_text(text, encoding="utf-8")
    return out


@contextmanager
def nginx(upstreams: list[int], workdir: Path) -> Iterator[str | None]:
    """Debian's nginx in the foreground with deploy/nginx.conf in front of `upstreams`; yields its base URL."""
    binary = nginx_binary()
    if binary is None:
        yield None
        return
    port = free_port()
    conf = render_nginx_conf(port, upstreams, workdir)
    subprocess.run([binary, "-t", "-c", str(conf), "-e", str(workdir / "nginx-error.log")], check=True,
                   capture_output=True)
    proc = subprocess.Popen([binary, "-c", str(conf), "-e", str(workdir / "nginx-error.log"), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(url + "/nginx-health", timeout=5).status_code == 200, 30, "nginx", proc,
                 workdir / "nginx-error.log")
        yield url
    finally:
        stop(proc)


# ---- chroma run --------------------------------------------------------------------------------------------

@contextmanager
def chroma_server(workdir: Path) -> Iterator[str | None]:
    """`chroma run` (the chromadb package's server) on a free loopback port; yields its URL."""
    binary = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    if not Path(binary).exists():
        yield None
        return
    port = free_port()
    log = workdir / "chroma.log"
    proc = subprocess.Popen([binary, "run", "--host", "127.0.0.1", "--port", str(port), "--path",
                             str(workdir / "chroma-data")], stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            env=assistant_env(), start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(url + "/api/v2/heartbeat", timeout=5).status_code == 200, 60, "chroma run",
                 proc, log)
        yield url
    finally:
        stop(proc)
