"""Per-project quotas through Huawei's SDK (docs/huawei-errors.md): a project creates ports,
filters and sessions up to its quota, the next create raises 409 VPC.0114 (ports in the v1
body, which the SDK reads the same way) and changes nothing, and a delete frees a slot. On a
server of their own (`quota_server`), whose project may hold 2 sessions, 2 filters, 3 ports."""

import pytest

import hwsupport
from hwsupport import expect_error


@pytest.fixture
def qres(quota_server):
    v3, v2 = hwsupport.make_clients(quota_server.endpoint, quota_server.access_key,
                                    quota_server.secret_key, quota_server.project_id)
    r = hwsupport.Resources(v3, v2, hwsupport.PriorityCounter(v3))
    yield r
    r.cleanup()


def test_ports_stop_at_the_quota(qres, quotas):
    ports = qres.port_ids(quotas["ports"])
    e = expect_error(lambda: qres.create_port(), 409, "VPC.0114")
    assert e.error_msg == f"quota exceeded: at most {quotas['ports']} ports per project"
    assert len(qres.v2.list_ports(hwsupport.hv2.ListPortsRequest()).ports) == quotas["ports"]
    qres.delete_port(ports[0])
    qres.port()


def test_filters_stop_at_the_quota(qres, quotas):
    first = qres.filter().id
    for _ in range(quotas["filters"] - 1):
        qres.filter()
    e = expect_error(lambda: qres.create_filter(), 409, "VPC.0114")
    assert e.error_msg == f"quota exceeded: at most {quotas['filters']} traffic mirror filters per project"
    assert len(qres.list_filters().traffic_mirror_filters) == quotas["filters"]
    qres.delete_filter(first)
    qres.filter()


def test_sessions_stop_at_the_quota(qres, quotas):
    flt, target = qres.filter().id, qres.port().id

    def create():
        return qres.session(filter_id=flt, sources=[], target=target)

    first = create().id
    for _ in range(quotas["sessions"] - 1):
        create()
    e = expect_error(create, 409, "VPC.0114")
    assert e.error_msg == f"quota exceeded: at most {quotas['sessions']} traffic mirror sessions per project"
    assert len(hwsupport.list_all_sessions(qres.v3)) == quotas["sessions"]
    qres.delete_session(first)
    create()
