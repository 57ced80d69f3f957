"""Authentication and project scoping as the SDK sees them (reference §9, §7.4; issue 3
point 7; docs/huawei-errors.md)."""

import json
import os
import stat
from datetime import datetime, timedelta, timezone

import pytest
from huaweicloudsdkvpc import v2 as hv2
from huaweicloudsdkvpc import v3 as hv3

from hwsupport import (PROJECT_RE, Resources, admin_credential, admin_call, admin_tenant, expect_error, http_config,
                       make_clients, uid)


def other_project_id(project_id):
    other = uid().replace("-", "")
    assert other != project_id
    return other


def calls(res, session_id, port_id):
    """One read and one write of each family, each refused before anything changes."""
    return {
        "list sessions": lambda: res.list_sessions(),
        "show session": lambda: res.show_session(session_id),
        "update session": lambda: res.update_session(session_id, name="hijacked"),
        "delete session": lambda: res.delete_session(session_id),
        "create filter": lambda: res.create_filter(name="intruder"),
        "list rules": lambda: res.list_rules(),
        "list ports": lambda: res.v2.list_ports(hv2.ListPortsRequest()),
        "show port": lambda: res.show_port(port_id),
        "delete port": lambda: res.delete_port(port_id),
    }


@pytest.fixture
def victim(res):
    """A session and a spare port that refused requests must leave alone."""
    s = res.session()
    port = res.port().id
    return s, port


def unchanged(res, s, port, filters_before):
    got = res.show_session(s.id).traffic_mirror_session
    assert (got.name, got.priority) == (s.name, s.priority)
    assert res.show_port(port).port.id == port
    assert [f.id for f in res.list_filters().traffic_mirror_filters] == filters_before


def test_admin_credentials_file(server):
    path = server.credentials_path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    creds = json.loads(path.read_text())
    assert set(creds) == {"access_key", "secret_key", "project_id", "endpoint"}
    assert PROJECT_RE.match(creds["project_id"])
    assert creds["endpoint"].startswith(("https" if server.ca_file else "http") + "://127.0.0.1:")
    assert all(isinstance(v, str) and v for v in creds.values())


@pytest.mark.parametrize("what", ["wrong secret key", "unknown access key"])
def test_bad_credentials_get_401(server, res, victim, what):
    s, port = victim
    ak, sk = server.access_key, server.secret_key
    if what == "wrong secret key":
        sk = sk[:-1] + ("A" if sk[-1] != "A" else "B")
    else:
        ak = "AK" + uid().replace("-", "").upper()[:18]
    v3, v2 = make_clients(server.endpoint, ak, sk, server.project_id)
    bad = Resources(v3, v2, res.priorities)
    filters_before = [f.id for f in res.list_filters().traffic_mirror_filters]
    for name, call in calls(bad, s.id, port).items():
        e = expect_error(call, 401, "APIGW.0301")
        assert e.error_msg, name
    unchanged(res, s, port, filters_before)


def test_credential_of_another_project_gets_403(server, res, victim):
    # The credential is valid; the path names a project that is not the credential's.
    s, port = victim
    v3, v2 = make_clients(server.endpoint, server.access_key, server.secret_key,
                          other_project_id(server.project_id))
    foreign = Resources(v3, v2, res.priorities)
    filters_before = [f.id for f in res.list_filters().traffic_mirror_filters]
    for name, call in calls(foreign, s.id, port).items():
        expect_error(call, 403, "VPC.0007")
    # An existing and a non-existing id answer alike: nothing about the project leaks.
    expect_error(lambda: foreign.show_session(uid()), 403, "VPC.0007")
    expect_error(lambda: foreign.show_port(uid()), 403, "VPC.0007")
    unchanged(res, s, port, filters_before)


@pytest.mark.parametrize("skew_minutes", [-20, 20])
def test_skewed_sdk_date_gets_401(server, res, skew_minutes):
    # The SDK signs a preset X-Sdk-Date as it is (signer._process_header_time), so the signature
    # is valid and only the clock is off by more than the allowed 15 minutes.
    v3, v2 = make_clients(server.endpoint, server.access_key, server.secret_key, server.project_id)
    when = datetime.now(timezone.utc) + timedelta(minutes=skew_minutes)
    v3.preset_headers["X-Sdk-Date"] = when.strftime("%Y%m%dT%H%M%SZ")
    v2.preset_headers["X-Sdk-Date"] = when.strftime("%Y%m%dT%H%M%SZ")
    expect_error(lambda: v3.list_traffic_mirror_filters(hv3.ListTrafficMirrorFiltersRequest()), 401, "APIGW.0301")
    expect_error(lambda: v2.list_ports(hv2.ListPortsRequest()), 401, "APIGW.0301")


def test_small_clock_skew_is_accepted(server):
    v3, _ = make_clients(server.endpoint, server.access_key, server.secret_key, server.project_id)
    v3.preset_headers["X-Sdk-Date"] = (datetime.now(timezone.utc) - timedelta(minutes=5)).strftime("%Y%m%dT%H%M%SZ")
    assert v3.list_traffic_mirror_filters(hv3.ListTrafficMirrorFiltersRequest()).status_code == 200


def test_error_responses_carry_a_request_id(res):
    e = expect_error(lambda: res.show_session(uid()), 404, "VPC.1701")
    e2 = expect_error(lambda: res.show_session(uid()), 404, "VPC.1701")
    assert e.request_id != e2.request_id, "each response has its own request id"
    e = expect_error(lambda: res.show_port(uid()), 404, "VPC.1704")
    assert e.request_id


def test_get_without_signed_content_type(server):
    # HttpConfig.ignore_content_type_for_get_request: GETs carry no Content-Type and do not sign it.
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    cfg = http_config(server.endpoint)
    cfg.ignore_content_type_for_get_request = True
    creds = BasicCredentials(server.access_key, server.secret_key, server.project_id)
    v3 = hv3.VpcClient.new_builder().with_http_config(cfg).with_credentials(creds) \
        .with_endpoints([server.endpoint]).build()
    assert v3.list_traffic_mirror_sessions(hv3.ListTrafficMirrorSessionsRequest(limit=1)).status_code == 200
    v2 = hv2.VpcClient.new_builder().with_http_config(cfg).with_credentials(creds) \
        .with_endpoints([server.endpoint]).build()
    assert v2.list_ports(hv2.ListPortsRequest(limit=1)).status_code == 200


def test_client_configured_with_a_region(server):
    # Reference §10: with_region(Region(...)) works when the project id is given.
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.region.region import Region
    creds = BasicCredentials(server.access_key, server.secret_key, server.project_id)
    v3 = hv3.VpcClient.new_builder().with_http_config(http_config(server.endpoint)) \
        .with_credentials(creds).with_region(Region("local-1", server.endpoint)).build()
    assert v3.list_traffic_mirror_filters(hv3.ListTrafficMirrorFiltersRequest()).status_code == 200


def test_the_suite_runs_with_a_member_key_not_the_operators(server):
    # conftest.py made this project and key through the admin API; the operator's stay aside.
    assert server.access_key != server.operator.access_key
    assert server.project_id != server.operator.project_id
    status, body = admin_call(server.endpoint, server.access_key, server.secret_key, "GET",
                              f"/admin/v1/projects/{server.project_id}/credentials")
    assert status == 403 and "Forbidden" in str(body), "a member manages no keys"


def test_a_reader_key_reads_and_writes_nothing(server, res, victim):
    s, port = victim
    op = server.operator
    reader = admin_credential(server.endpoint, op.access_key, op.secret_key, server.project_id, "reader")
    v3, v2 = make_clients(server.endpoint, reader["access_key"], reader["secret_key"], server.project_id)
    ro = Resources(v3, v2, res.priorities)
    filters_before = [f.id for f in res.list_filters().traffic_mirror_filters]
    assert ro.show_session(s.id).traffic_mirror_session.id == s.id
    assert ro.show_port(port).port.id == port
    assert [f.id for f in ro.list_filters().traffic_mirror_filters] == filters_before
    for name in ("update session", "delete session", "create filter", "delete port"):
        e = expect_error(calls(ro, s.id, port)[name], 403, "VPC.0010")
        assert "reader" in e.error_msg, name
    expect_error(lambda: ro.create_port(), 403, "VPC.0010")
    unchanged(res, s, port, filters_before)


def test_another_projects_resources_are_unknown_ids(server, res, victim):
    # A member of another project, with its own valid key and its own project in the path: the
    # suite's session and port answer exactly as ids nobody holds (status, code and message).
    s, port = victim
    op = server.operator
    other = admin_tenant(server.endpoint, op.access_key, op.secret_key, f"other-{uid()[:8]}")
    v3, v2 = make_clients(server.endpoint, other["access_key"], other["secret_key"], other["project_id"])
    foreign = Resources(v3, v2, res.priorities)
    filters_before = [f.id for f in res.list_filters().traffic_mirror_filters]
    for name, code in [("show session", "VPC.1701"), ("update session", "VPC.1701"),
                       ("delete session", "VPC.1701"), ("show port", "VPC.1704"), ("delete port", "VPC.1704")]:
        nobody = uid()
        theirs = expect_error(calls(foreign, s.id, port)[name], 404, code)
        nobodys = expect_error(calls(foreign, nobody, nobody)[name], 404, code)
        assert theirs.error_msg.replace(s.id, "<id>").replace(port, "<id>") == \
            nobodys.error_msg.replace(nobody, "<id>"), name
    assert foreign.list_sessions().traffic_mirror_sessions == []
    assert foreign.v2.list_ports(hv2.ListPortsRequest()).ports == []
    unchanged(res, s, port, filters_before)
