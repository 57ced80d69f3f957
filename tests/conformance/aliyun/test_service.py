"""OpenTrafficMirrorService, GetTrafficMirrorServiceStatus and OptInRequired.TrafficMirror."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from alibabacloud_vpc20160428 import models as vpc

import alisupport
from alisupport import REGION, expect_error

REPO = Path(__file__).resolve().parents[3]


def test_status_and_second_open(ali):
    body = ali.get_traffic_mirror_service_status(vpc.GetTrafficMirrorServiceStatusRequest(region_id=REGION)).body
    assert body.enabled is True
    # No RegionId at all (Terraform sends none).
    assert ali.get_traffic_mirror_service_status(vpc.GetTrafficMirrorServiceStatusRequest()).body.enabled is True
    expect_error(lambda: ali.open_traffic_mirror_service(vpc.OpenTrafficMirrorServiceRequest(region_id=REGION)),
                 "ORDER.OPEND")


@pytest.fixture
def fresh_server(tmp_path):
    """A second server with its own account, on which the service is not open yet."""
    binary = Path(os.environ.get("TMIRROR_BIN", REPO / "target" / "debug" / "tmirror"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMIRROR_")}
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen([str(binary), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir",
                             str(tmp_path / "data")], stdout=log, stderr=subprocess.STDOUT, env=env)
    creds = tmp_path / "data" / "admin-credentials.json"
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                if creds.exists():
                    data = json.loads(creds.read_text())
                    break
        except (OSError, ValueError):
            pass
        assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "server.log").read_text()
        time.sleep(0.1)
    yield data
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    log.close()


def test_opt_in_required_before_open(fresh_server, scheme):
    c = alisupport.make_client(fresh_server["endpoint"], fresh_server["access_key"],
                               fresh_server["secret_key"], scheme)
    status = c.get_traffic_mirror_service_status(vpc.GetTrafficMirrorServiceStatusRequest(region_id=REGION))
    assert status.body.enabled is False
    expect_error(lambda: c.list_traffic_mirror_sessions(vpc.ListTrafficMirrorSessionsRequest(region_id=REGION)),
                 "OptInRequired.TrafficMirror")
    expect_error(lambda: c.create_traffic_mirror_filter(vpc.CreateTrafficMirrorFilterRequest(region_id=REGION)),
                 "OptInRequired.TrafficMirror")
    resp = c.open_traffic_mirror_service(vpc.OpenTrafficMirrorServiceRequest(region_id=REGION))
    assert (resp.body.code, resp.body.message) == ("200", "successful")
    assert resp.body.request_id
    assert c.get_traffic_mirror_service_status(
        vpc.GetTrafficMirrorServiceStatusRequest(region_id=REGION)).body.enabled is True
    assert c.list_traffic_mirror_sessions(vpc.ListTrafficMirrorSessionsRequest(region_id=REGION)).body.total_count == "0"
