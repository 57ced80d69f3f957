"""What goes over the wire around the bodies: request ids, content types, success codes and
error body formats (reference §1, §2, §7; docs/huawei-errors.md). The SDK's HttpHandler hook
records each raw response."""

import json

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkvpc import v2 as hv2

from hwsupport import Resources, make_clients, uid


@pytest.fixture
def wire(server, res):
    """A Resources whose clients record every response; clean-up through the shared one."""
    seen = []
    v3, v2 = make_clients(server.endpoint, server.access_key, server.secret_key, server.project_id,
                          recorder=seen)
    r = Resources(v3, v2, res.priorities)
    yield r, seen
    r.cleanup()


def last(seen):
    return seen[-1]


def check_v3_success(resp, status):
    assert resp.status_code == status, resp.status_code
    rid = resp.headers.get("X-Request-Id")
    assert rid, "X-Request-Id missing"
    if status == 204:
        assert resp.content == b""
        return
    assert resp.headers.get("Content-Type", "").split(";")[0].strip() == "application/json"
    body = json.loads(resp.content)
    assert body["request_id"] == rid, "X-Request-Id must equal the body's request_id"


def check_v3_error(resp, status, code):
    assert resp.status_code == status
    assert resp.headers.get("Content-Type", "").split(";")[0].strip() == "application/json"
    body = json.loads(resp.content)
    assert set(body) == {"request_id", "error_code", "error_msg"}, body
    assert body["error_code"] == code
    assert body["request_id"] == resp.headers.get("X-Request-Id")


def test_v3_success_codes_and_request_ids(wire):
    r, seen = wire
    flt = r.filter().id
    check_v3_success(last(seen), 201)
    r.show_filter(flt)
    check_v3_success(last(seen), 200)
    r.list_filters()
    check_v3_success(last(seen), 200)
    r.update_filter(flt, description="x")
    check_v3_success(last(seen), 200)
    rule = r.rule(flt).id
    check_v3_success(last(seen), 201)
    r.update_rule(rule, description="y")
    check_v3_success(last(seen), 200)
    r.list_rules(traffic_mirror_filter_id=flt)
    check_v3_success(last(seen), 200)
    src, extra, tgt = r.port_ids(3)
    sid = r.session(sources=[src], target=tgt, filter_id=flt).id
    check_v3_success(last(seen), 201)
    for call in (lambda: r.show_session(sid), lambda: r.list_sessions(),
                 lambda: r.update_session(sid, name="wired"), lambda: r.add_sources(sid, [extra]),
                 lambda: r.remove_sources(sid, [extra])):
        call()
        check_v3_success(last(seen), 200)
    r.delete_session(sid)
    check_v3_success(last(seen), 204)
    r.delete_rule(rule)
    check_v3_success(last(seen), 204)
    r.delete_filter(flt)
    check_v3_success(last(seen), 204)


def test_v3_error_body(wire):
    r, seen = wire
    with pytest.raises(ClientRequestException):
        r.show_session(uid())
    check_v3_error(last(seen), 404, "VPC.1701")
    with pytest.raises(ClientRequestException):
        r.create_filter(name="")
    check_v3_error(last(seen), 400, "VPC.0101")


def test_v1_ports_codes_and_error_body(wire):
    r, seen = wire
    pid = r.port().id
    assert last(seen).status_code == 201
    assert last(seen).headers.get("X-Request-Id")
    r.show_port(pid)
    assert last(seen).status_code == 200
    r.v2.list_ports(hv2.ListPortsRequest())
    assert last(seen).status_code == 200
    assert "ports" in json.loads(last(seen).content)
    r.delete_port(pid)
    assert last(seen).status_code == 204 and last(seen).content == b""
    with pytest.raises(ClientRequestException):
        r.show_port(pid)
    resp = last(seen)
    assert resp.status_code == 404
    body = json.loads(resp.content)
    # v1 errors use {"code", "message"} (reference §7.1), and the same pair as
    # error_code/error_msg, the only keys Huawei's Node.js SDK reads.
    assert body["code"] == "VPC.1704" and isinstance(body["message"], str) and body["message"]
    assert body["error_code"] == body["code"] and body["error_msg"] == body["message"]
    assert body["request_id"] == resp.headers.get("X-Request-Id")
    assert resp.headers.get("X-Request-Id")
