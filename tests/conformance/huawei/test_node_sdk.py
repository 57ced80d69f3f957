"""Errors as Huawei's Node.js SDK shows them (@huaweicloud/huaweicloud-sdk-vpc, pinned in
tests/conformance/node/package-lock.json).

That SDK reads an error's code and message only from `error_code`/`error_msg` (or a nested
`error.code`/`error.message`); v1 error bodies of only {"code","message"} left its exception's
errorCode undefined and its errorMsg the HTTP client's "Request failed with status code 404".
tests/conformance/node/sdk-errors.js creates, shows and deletes a port with the real SDK, provokes
a v1 (ports), a v3 (traffic mirroring) and a 401 error, and writes what the SDK's exceptions
carried; this test checks it. scripts/node-deps.sh installs the SDK (npm ci, only when the lock
file changed); without node and npm the test fails, it does not skip.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest
from huaweicloudsdkvpc import v2 as hv2

from hwsupport import UUID_RE, expect_error

REPO = Path(__file__).resolve().parents[3]
NODE_DIR = REPO / "tests" / "conformance" / "node"
INSTALL_TIMEOUT = 300
RUN_TIMEOUT = 120
ERROR_FIELDS = ("name", "httpStatusCode", "errorCode", "errorMsg", "requestId")


@pytest.fixture(scope="module")
def node_dir():
    try:
        proc = subprocess.run([str(REPO / "scripts" / "node-deps.sh")], capture_output=True, text=True,
                              timeout=INSTALL_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"scripts/node-deps.sh did not finish within {INSTALL_TIMEOUT} s")
    if proc.returncode != 0:
        pytest.fail(f"scripts/node-deps.sh failed ({proc.returncode}); the Node.js SDK check needs node "
                    f"and npm:\n{proc.stderr[-4000:]}")
    return NODE_DIR


@pytest.fixture(scope="module")
def node_run(server, node_dir, tmp_path_factory):
    """Runs sdk-errors.js once against the suite's server; returns its JSON result."""
    out = tmp_path_factory.mktemp("node-sdk") / "result.json"
    env = dict(os.environ, CHECK_ENDPOINT=server.endpoint, CHECK_AK=server.access_key,
               CHECK_SK=server.secret_key, CHECK_PROJECT_ID=server.project_id, CHECK_RESULT=str(out))
    env.pop("NODE_EXTRA_CA_CERTS", None)  # the CA goes in through the SDK's options, nowhere else
    if server.ca_file is not None:
        env["CHECK_CA_FILE"] = str(server.ca_file)
    try:
        proc = subprocess.run(["node", "sdk-errors.js"], cwd=node_dir, env=env, capture_output=True,
                              text=True, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"node sdk-errors.js did not finish within {RUN_TIMEOUT} s:\n{e.stdout}\n{e.stderr}")
    log = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    if not out.exists():
        pytest.fail(f"node sdk-errors.js wrote no result:\n{log}")
    result = json.loads(out.read_text())
    assert "crash" not in result and proc.returncode == 0, (
        f"node sdk-errors.js stopped: {json.dumps(result.get('crash'), indent=2)}\n{log}")
    return result


def pinned(name):
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    return lock["packages"][f"node_modules/{name}"]["version"]


def check_error(err, status, code, mentions=None):
    """The SDK raised ClientRequestException with the server's status, code, message and id."""
    shown = {k: err.get(k) for k in ERROR_FIELDS}
    assert err["thrown"], f"expected {status} {code}, the call succeeded: {err}"
    assert err["isClientRequestException"], shown
    assert (err["httpStatusCode"], err["errorCode"]) == (status, code), shown
    msg = err["errorMsg"]
    assert isinstance(msg, str) and msg.strip(), f"errorMsg must explain the error: {shown}"
    assert err["errorMsgText"] == msg and msg != "undefined", shown
    # The HTTP client's fallback when the SDK finds no message in the body.
    assert not msg.startswith("Request failed with status code"), shown
    if mentions is not None:
        assert mentions in msg, shown
    assert isinstance(err["requestId"], str) and err["requestId"].strip(), (
        f"requestId (X-Request-Id) missing: {shown}")
    return err


def test_sdk_versions_are_the_pinned_ones(node_run):
    sdk = node_run["sdk"]
    assert sdk["core"] == pinned("@huaweicloud/huaweicloud-sdk-core")
    assert sdk["vpc"] == pinned("@huaweicloud/huaweicloud-sdk-vpc")


def test_port_create_show_delete(node_run, v2, project_id):
    created = node_run["created"]
    sent = created["sent"]
    assert created["httpStatusCode"] == 201
    port = created["port"]
    assert UUID_RE.match(port["id"])
    assert port["name"] == sent["name"]
    assert port["network_id"] == sent["network_id"]
    assert port["fixed_ips"] == [{"subnet_id": sent["subnet_id"], "ip_address": sent["ip_address"]}]
    assert port["tenant_id"] == project_id
    shown = node_run["shown"]
    assert shown["httpStatusCode"] == 200
    assert {k: shown["port"][k] for k in ("id", "name", "network_id", "fixed_ips")} == {
        k: port[k] for k in ("id", "name", "network_id", "fixed_ips")}
    assert node_run["deleted"]["httpStatusCode"] == 204
    check_error(node_run["errors"]["deletedPort"], 404, "VPC.1704", mentions=port["id"])
    # Gone for the Python SDK too: the script left nothing behind.
    expect_error(lambda: v2.show_port(hv2.ShowPortRequest(port["id"])), 404, "VPC.1704")


def test_v1_missing_port_error(node_run):
    """The reported bug: errorCode and errorMsg of a v1 (ports) error."""
    check_error(node_run["errors"]["missingPort"], 404, "VPC.1704", mentions=node_run["missingPortId"])


def test_v3_missing_filter_error(node_run):
    check_error(node_run["errors"]["missingFilter"], 404, "VPC.1702", mentions=node_run["missingFilterId"])


@pytest.mark.parametrize("which", ["wrongSecretV2", "wrongSecretV3"])
def test_wrong_secret_is_401(node_run, which):
    check_error(node_run["errors"][which], 401, "APIGW.0301")


def test_request_ids_are_distinct(node_run):
    ids = [e["requestId"] for e in node_run["errors"].values()]
    assert len(set(ids)) == len(ids), ids


def test_tls_verification_is_on(node_run, server):
    """Over https the script's clients trust the server's certificate through the SDK's options;
    one without it must fail on the certificate (the core's `disableSslVerification: true` is
    read by nothing)."""
    assert node_run["tls"] is (server.ca_file is not None)
    if server.ca_file is None:
        assert "untrusted" not in node_run
        return
    untrusted = node_run["untrusted"]
    assert untrusted["thrown"], f"a client without the CA reached the server: {untrusted}"
    assert untrusted["httpStatusCode"] is None, untrusted
    assert "certificate" in (untrusted["message"] or "").lower(), untrusted
