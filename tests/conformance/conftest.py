"""Fixtures of the conformance suite: a real `tmirror serve` on a free loopback port, the
official Huawei SDK clients pointed at it (reference/huawei-api.md §10), and per-test resource
factories that remove what each test created; and a second server with small per-project
quotas for the quotas' own tests (`quota_server`).

The suite runs as a tenant, as users do: on each server the operator's credential
(`admin-credentials.json`) makes a project and a *member* credential of it through the admin
API, and every SDK client of the suite signs with that member key. Only what is the operator's
(port bindings: `operator_res`) uses the operator's credential.

Environment:
  TMIRROR_BIN                 server binary (default <repo>/target/debug/tmirror)
  TMIRROR_TEST_DATABASE_URL   passed to `serve --database-url` when set (PostgreSQL)
  TMIRROR_CONFORMANCE_TLS     1: every server runs `serve --tls-self-signed` and every client
                              speaks https to it, verifying the certificate against the server's
                              own `tls-cert.pem` (its only CA); unset or 0: plain HTTP
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import hwsupport  # noqa: E402  (needs the path above)

STARTUP_TIMEOUT = 20.0

# The TLS run: see the module's docstring.
TLS = os.environ.get("TMIRROR_CONFORMANCE_TLS", "0") not in ("", "0")

_server_log: Path | None = None
_server_exit: int | None = None


@dataclass
class Credential:
    access_key: str
    secret_key: str
    project_id: str


@dataclass
class Server:
    """A running server. `access_key`, `secret_key` and `project_id` are the suite's member
    credential (made through the admin API); `operator` is the operator's, from
    `credentials_path` (`<data_dir>/admin-credentials.json`)."""
    endpoint: str
    access_key: str
    secret_key: str
    project_id: str
    operator: Credential
    data_dir: Path
    log_path: Path
    credentials_path: Path
    ca_file: Path | None = None  # the server's self-signed certificate over TLS, else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """Linux: the server gets SIGTERM if pytest itself dies (kill -9), so none is left behind."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort; teardown stops the server normally
        pass


def _healthy(url: str, ca_file: Path | None = None) -> bool:
    """GET `url` answers 200; over https the certificate is verified against `ca_file`."""
    context = None
    if url.startswith("https://"):
        if ca_file is None or not ca_file.exists():
            return False
        context = ssl.create_default_context(cafile=str(ca_file))
    try:
        with urllib.request.urlopen(url, timeout=1, context=context) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


# The suite's tests share the server's one project, and some make thousands of resources in it
# (huawei/test_page_limits.py: 2001 filters), so its per-project quotas are out of the way;
# the quotas' own tests (*/test_quotas.py) use `quota_server`.
SHARED_QUOTAS = ("--max-sessions-per-project", "1000000", "--max-filters-per-project", "1000000",
                 "--max-ports-per-project", "1000000")

# What `quota_server` allows one project.
QUOTAS = {"sessions": 2, "filters": 2, "ports": 3}


@contextlib.contextmanager
def run_server(base: Path, *args: str, database_url: str | None = None):
    """Runs `tmirror serve ARGS` on a free loopback port with a fresh data directory under `base`
    until the block ends; yields (Server, the process). With TLS (TMIRROR_CONFORMANCE_TLS=1),
    `--tls-self-signed`, and the server's certificate becomes the CA of its clients."""
    binary = Path(os.environ.get("TMIRROR_BIN", REPO / "target" / "debug" / "tmirror"))
    if not binary.exists():
        pytest.fail(f"server binary {binary} not found: build it (cargo build) or set TMIRROR_BIN")

    data_dir = base / "data"
    data_dir.mkdir()
    log_path = base / "server.log"
    port = _free_port()
    listen = f"127.0.0.1:{port}"
    cmd = [str(binary), "serve", "--listen", listen, "--data-dir", str(data_dir), *args]
    if database_url:
        cmd += ["--database-url", database_url]
    ca_file = None
    scheme = "http"
    if TLS:
        cmd.append("--tls-self-signed")
        ca_file = data_dir / "tls-cert.pem"
        scheme = "https"

    # The flags decide; stray TMIRROR_* settings of the caller's shell must not.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMIRROR_")}
    env.setdefault("RUST_LOG", "info")
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                            preexec_fn=_die_with_parent)
    try:
        creds_path = data_dir / "admin-credentials.json"
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"tmirror serve exited with {proc.returncode} during start-up:\n"
                            + log_path.read_text(errors="replace")[-4000:])
            if _healthy(f"{scheme}://{listen}/healthz", ca_file) and creds_path.exists():
                break
            if time.monotonic() > deadline:
                pytest.fail(f"tmirror serve not healthy on {listen} within {STARTUP_TIMEOUT:.0f} s:\n"
                            + log_path.read_text(errors="replace")[-4000:])
            time.sleep(0.1)
        creds = None
        for _ in range(50):  # the file may be mid-write when it first appears
            try:
                creds = json.loads(creds_path.read_text())
                break
            except ValueError:
                time.sleep(0.1)
        assert creds is not None, f"{creds_path} is not valid JSON"
        operator = Credential(creds["access_key"], creds["secret_key"], creds["project_id"])
        assert creds["endpoint"] == f"{scheme}://{listen}", creds["endpoint"]
        if ca_file is not None:
            hwsupport.trust(creds["endpoint"], ca_file)
        # The suite's tenant: a project of its own and a member key, made by the operator.
        member = hwsupport.admin_tenant(creds["endpoint"], operator.access_key, operator.secret_key,
                                        f"conformance-{hwsupport.short()}", "member")
        assert member["project_id"] != operator.project_id
        yield Server(
            endpoint=creds["endpoint"],
            access_key=member["access_key"],
            secret_key=member["secret_key"],
            project_id=member["project_id"],
            operator=operator,
            data_dir=data_dir,
            log_path=log_path,
            credentials_path=creds_path,
            ca_file=ca_file,
        ), proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    global _server_log, _server_exit
    base = tmp_path_factory.mktemp("tmirror")
    _server_log = base / "server.log"
    database_url = os.environ.get("TMIRROR_TEST_DATABASE_URL")
    with run_server(base, *SHARED_QUOTAS, database_url=database_url) as (srv, proc):
        yield srv
    _server_exit = proc.returncode


@pytest.fixture(scope="session")
def quota_server(tmp_path_factory) -> Server:
    """A second server whose one project may hold `QUOTAS`. Always on SQLite: on the suite's
    PostgreSQL database it would share the first server's project, and its resources. (The
    count behind the quotas runs on both back-ends in the store suite.)"""
    base = tmp_path_factory.mktemp("tmirror-quotas")
    with run_server(base, "--max-sessions-per-project", str(QUOTAS["sessions"]),
                    "--max-filters-per-project", str(QUOTAS["filters"]),
                    "--max-ports-per-project", str(QUOTAS["ports"])) as (srv, _):
        yield srv


@pytest.fixture(scope="session")
def quotas() -> dict:
    """What `quota_server` allows its project: {"sessions", "filters", "ports"}."""
    return dict(QUOTAS)


@pytest.fixture(scope="session", autouse=True)
def _sdk_home():
    """The SDK writes ~/.huaweicloud/application_id; keep it out of the real home."""
    old = os.environ.get("HOME")
    with tempfile.TemporaryDirectory(prefix="tmirror-sdk-home-") as home:
        os.environ["HOME"] = home
        yield
    if old is None:
        os.environ.pop("HOME", None)
    else:
        os.environ["HOME"] = old


@pytest.fixture(scope="session")
def clients(server):
    return hwsupport.make_clients(server.endpoint, server.access_key, server.secret_key, server.project_id)


@pytest.fixture(scope="session")
def v3(clients):
    """`huaweicloudsdkvpc.v3.VpcClient`: the 17 traffic-mirroring operations."""
    return clients[0]


@pytest.fixture(scope="session")
def v2(clients):
    """`huaweicloudsdkvpc.v2.VpcClient`: the /v1 ports API."""
    return clients[1]


@pytest.fixture(scope="session")
def operator_clients(server):
    """The v3 and v2 clients with the operator's credential, in the operator's own project."""
    op = server.operator
    return hwsupport.make_clients(server.endpoint, op.access_key, op.secret_key, op.project_id)


@pytest.fixture
def operator_res(operator_clients):
    """`res` for the operator, in its own project and network: what only the operator may do
    on the Huawei face (`binding:host_id`, `binding:profile`)."""
    v3, v2 = operator_clients
    r = hwsupport.Resources(v3, v2, hwsupport.PriorityCounter(v3), network_id=hwsupport.OPERATOR_NETWORK_ID)
    yield r
    r.cleanup()


@pytest.fixture(scope="session")
def project_id(server):
    return server.project_id


@pytest.fixture(scope="session")
def priorities(v3):
    """Session priorities are unique per project: hand out fresh ones above what exists."""
    return hwsupport.PriorityCounter(v3)


@pytest.fixture
def res(v3, v2, priorities):
    """Factories for ports, filters, rules and sessions; deletes whatever the test created."""
    r = hwsupport.Resources(v3, v2, priorities)
    yield r
    r.cleanup()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _server_log is None:
        return
    if _server_exit not in (None, 0):
        terminalreporter.write_line(f"note: tmirror serve exited with {_server_exit} after SIGTERM")
    if exitstatus != 0:
        terminalreporter.write_line(f"server log: {_server_log}")
