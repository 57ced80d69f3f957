"""The CLB (SLB 2014-05-15) subset through the official `alibabacloud-slb20140515` client, on the
same endpoint and in the same three signature modes as the VPC client: load balancers, backend
servers, their health, the UDP listener that sets the health check, a session aimed at such a
load balancer through `alibabacloud-vpc20160428`, and who may call what
(docs/load-balancers.md)."""

from __future__ import annotations

import json
import random
import re
import socket
import time
import uuid

import pytest
from alibabacloud_slb20140515 import models as slb
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
from alibabacloud_vpc20160428 import models as vpc
from huaweicloudsdkvpc import v3 as hv3

import alisupport
import hwsupport
from alisupport import REGION, expect_error


# A hyphenated UUID: the canonical spelling this face never shows.
CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-")


def unknown_lb() -> str:
    return "lb-" + uuid.uuid4().hex


class Slb:
    """Load balancers through the SLB SDK, deleted at the end of the test."""

    def __init__(self, client):
        self.c = client
        self.lbs: list[str] = []

    def create(self, **kw):
        kw.setdefault("region_id", REGION)
        kw.setdefault("address_type", "intranet")
        resp = self.c.create_load_balancer(slb.CreateLoadBalancerRequest(**kw))
        self.lbs.append(resp.body.load_balancer_id)
        return resp.body

    def lb(self, **kw) -> str:
        return self.create(**kw).load_balancer_id

    def describe(self, **kw):
        kw.setdefault("region_id", REGION)
        return self.c.describe_load_balancers(slb.DescribeLoadBalancersRequest(**kw)).body

    def attribute(self, lb_id):
        return self.c.describe_load_balancer_attribute(slb.DescribeLoadBalancerAttributeRequest(
            region_id=REGION, load_balancer_id=lb_id)).body

    def delete(self, lb_id):
        return self.c.delete_load_balancer(slb.DeleteLoadBalancerRequest(
            region_id=REGION, load_balancer_id=lb_id))

    def cleanup(self):
        errors = []
        for lb_id in reversed(self.lbs):
            try:
                self.delete(lb_id)
            except AlibabaCloudException as e:
                if e.code != "InvalidLoadBalancerId.NotFound":
                    errors.append(f"delete {lb_id}: {e.code} {e.message}")
        self.lbs.clear()
        if errors:
            raise AssertionError("clean-up failed:\n" + "\n".join(errors))


@pytest.fixture(scope="session")
def slbc(server, scheme):
    return alisupport.make_slb_client(server.endpoint, server.access_key, server.secret_key, scheme)


@pytest.fixture
def lbs(slbc):
    r = Slb(slbc)
    yield r
    r.cleanup()


def test_load_balancer_life(lbs):
    name = f"collectors-{hwsupport.short()}"
    tok = alisupport.token()
    created = lbs.create(load_balancer_name=name, vpc_id="vpc-conf", v_switch_id="vsw-conf",
                         load_balancer_spec="slb.s1.small", master_zone_id="cn-hangzhou-b",
                         address="10.0.0.9", client_token=tok,
                         modification_protection_status="ConsoleProtection",
                         modification_protection_reason="mirror target",
                         tag=[slb.CreateLoadBalancerRequestTag(key="team", value="ids")])
    lb_id = created.load_balancer_id
    assert lb_id.startswith("lb-") and len(lb_id) == 35
    assert (created.load_balancer_name, created.address, created.network_type) == (name, "10.0.0.9", "vpc")
    assert (created.vpc_id, created.v_switch_id, created.address_ipversion) == ("vpc-conf", "vsw-conf", "ipv4")
    assert created.resource_group_id == "rg-default"
    assert created.request_id == created.request_id.upper()
    # The same ClientToken answers the first answer again and creates nothing.
    again = lbs.c.create_load_balancer(slb.CreateLoadBalancerRequest(
        region_id=REGION, address_type="intranet", load_balancer_name=name, vpc_id="vpc-conf",
        v_switch_id="vsw-conf", load_balancer_spec="slb.s1.small", master_zone_id="cn-hangzhou-b",
        address="10.0.0.9", client_token=tok, modification_protection_status="ConsoleProtection",
        modification_protection_reason="mirror target",
        tag=[slb.CreateLoadBalancerRequestTag(key="team", value="ids")])).body
    assert again.load_balancer_id == lb_id

    listed = lbs.describe(load_balancer_id=lb_id)
    assert (listed.total_count, listed.page_number, listed.page_size) == (1, 1, 10)
    one = listed.load_balancers.load_balancer[0]
    assert (one.load_balancer_id, one.load_balancer_name, one.load_balancer_status) == (lb_id, name, "active")
    assert (one.address_type, one.load_balancer_spec, one.master_zone_id) == ("intranet", "slb.s1.small", "cn-hangzhou-b")
    assert one.region_id == REGION
    assert (one.modification_protection_status, one.modification_protection_reason) == (
        "ConsoleProtection", "mirror target")
    assert [(t.tag_key, t.tag_value) for t in one.tags.tag] == [("team", "ids")]
    assert one.create_time.endswith("Z") and one.create_time_stamp > 0
    assert lbs.describe(load_balancer_name=name).total_count == 1
    assert lbs.describe(load_balancer_name=name + "-no").total_count == 0
    assert lbs.describe(vpc_id="vpc-conf", address="10.0.0.9", load_balancer_id=lb_id).total_count == 1
    assert lbs.describe(master_zone_id="cn-hangzhou-b", load_balancer_id=lb_id).total_count == 1
    assert lbs.describe(master_zone_id="cn-hangzhou-c", load_balancer_id=lb_id).total_count == 0
    tag = slb.DescribeLoadBalancersRequestTag
    assert lbs.describe(tag=[tag(key="team", value="ids")], load_balancer_id=lb_id).total_count == 1
    assert lbs.describe(tag=[tag(key="team")], load_balancer_id=lb_id).total_count == 1
    assert lbs.describe(tag=[tag(key="team", value="ops")], load_balancer_id=lb_id).total_count == 0
    assert lbs.describe(tags='[{"TagKey": "team", "TagValue": "ids"}]', load_balancer_id=lb_id).total_count == 1
    assert lbs.describe(tags='[{"TagKey": "owner"}]', load_balancer_id=lb_id).total_count == 0
    expect_error(lambda: lbs.describe(tags="team=ids"), "InvalidParameter")

    attr = lbs.attribute(lb_id)
    assert (attr.load_balancer_id, attr.load_balancer_name, attr.address) == (lb_id, name, "10.0.0.9")
    assert attr.backend_servers.backend_server == []
    assert attr.listener_ports.listener_port == []

    lbs.delete(lb_id)
    assert lbs.describe(load_balancer_id=lb_id).total_count == 0
    expect_error(lambda: lbs.attribute(lb_id), "InvalidLoadBalancerId.NotFound")
    expect_error(lambda: lbs.delete(lb_id), "InvalidLoadBalancerId.NotFound")


def test_defaults_and_paging(lbs):
    ids = [lbs.lb() for _ in range(3)]
    one = lbs.describe(load_balancer_id=ids[0]).load_balancers.load_balancer[0]
    assert (one.address_type, one.address_ipversion, one.network_type) == ("intranet", "ipv4", "classic")
    assert one.load_balancer_name == "" and one.address == ""
    joined = ",".join(ids)
    pages = [lbs.describe(load_balancer_id=joined, page_size=2, page_number=n) for n in (1, 2)]
    assert [p.total_count for p in pages] == [3, 3]
    got = [lb.load_balancer_id for p in pages for lb in p.load_balancers.load_balancer]
    assert sorted(got) == sorted(ids)
    assert lbs.describe(load_balancer_id=joined, page_size=2, page_number=3).load_balancers.load_balancer == []


def test_bad_input_changes_nothing(lbs):
    before = lbs.describe().total_count
    for kw, code in (
        ({"address_type": "internet"}, "InvalidParameter"),
        ({"address": "10.0.0.300"}, "InvalidParameter"),
        ({"address": "fd00::1"}, "InvalidParameter"),
        ({"address_ipversion": "ipv5"}, "InvalidParameter"),
        ({"load_balancer_name": "x" * 81}, "InvalidParameter"),
        ({"delete_protection": "on"}, "InvalidParameter"),
        ({"bandwidth": 0}, "InvalidParameter"),
        ({"modification_protection_status": "Locked"}, "InvalidParameter"),
    ):
        e = expect_error(lambda kw=kw: lbs.create(**kw), code)
        assert e.data["Message"], e.data
    e = expect_error(lambda: lbs.c.create_load_balancer(slb.CreateLoadBalancerRequest(address_type="intranet")),
                     "MissingParameter")
    assert "product=Slb" in e.data["Recommend"], e.data
    assert lbs.describe().total_count == before
    expect_error(lambda: lbs.describe(page_size=101), "InvalidParameter")
    expect_error(lambda: lbs.describe(page_number=0), "InvalidParameter")
    for bad in (unknown_lb(), "lb-short", "i-123"):
        expect_error(lambda bad=bad: lbs.attribute(bad), "InvalidLoadBalancerId.NotFound")
        expect_error(lambda bad=bad: lbs.delete(bad), "InvalidLoadBalancerId.NotFound")


def test_an_unknown_action_of_the_slb_version(slbc):
    req = slb.DescribeRegionsRequest()
    expect_error(lambda: slbc.describe_regions(req), "InvalidAction.NotFound", 404)


def test_quota(server):
    """20 load balancers per project (a fresh project: the quota counts the project's own)."""
    op = server.operator
    t = hwsupport.admin_tenant(server.endpoint, op.access_key, op.secret_key, f"slbq-{hwsupport.short()}")
    r = Slb(alisupport.make_slb_client(server.endpoint, t["access_key"], t["secret_key"], "acs3"))
    try:
        for _ in range(20):
            r.lb()
        expect_error(lambda: r.lb(), "QuotaExceeded.LoadBalancerNum")
        assert r.describe(page_size=100).total_count == 20
    finally:
        r.cleanup()


@pytest.fixture(scope="module")
def reader(server):
    op = server.operator
    return hwsupport.admin_credential(server.endpoint, op.access_key, op.secret_key, server.project_id, "reader")


def test_a_reader_reads_and_writes_nothing(server, reader, lbs, ares, scheme):
    lb_id = lbs.lb(load_balancer_name="kept")
    ro = alisupport.make_slb_client(server.endpoint, reader["access_key"], reader["secret_key"], scheme)
    assert ro.describe_load_balancer_attribute(slb.DescribeLoadBalancerAttributeRequest(
        region_id=REGION, load_balancer_id=lb_id)).body.load_balancer_name == "kept"
    servers = f'[{{"ServerId": "{ares.eni()}", "Type": "eni"}}]'
    for call in (
        lambda: ro.create_load_balancer(slb.CreateLoadBalancerRequest(region_id=REGION, load_balancer_name="intruder")),
        lambda: ro.delete_load_balancer(slb.DeleteLoadBalancerRequest(region_id=REGION, load_balancer_id=lb_id)),
        lambda: ro.add_backend_servers(slb.AddBackendServersRequest(
            region_id=REGION, load_balancer_id=lb_id, backend_servers=servers)),
        lambda: ro.create_load_balancer_udplistener(slb.CreateLoadBalancerUDPListenerRequest(
            region_id=REGION, load_balancer_id=lb_id, listener_port=53, backend_server_port=53, bandwidth=-1)),
    ):
        e = expect_error(call, "Forbidden.RAM", 403)
        assert "reader" in e.data["Message"]
    assert lbs.describe(load_balancer_name="intruder").total_count == 0
    attr = lbs.attribute(lb_id)
    assert attr.backend_servers.backend_server == [] and attr.listener_ports.listener_port == []


def test_another_projects_load_balancer_is_an_unknown_id(server, lbs, ares, scheme):
    lb_id = lbs.lb(load_balancer_name="mine")
    op = server.operator
    other = hwsupport.admin_tenant(server.endpoint, op.access_key, op.secret_key, f"other-{hwsupport.short()}")
    them = alisupport.make_slb_client(server.endpoint, other["access_key"], other["secret_key"], scheme)
    servers = f'[{{"ServerId": "{ares.eni()}", "Type": "eni"}}]'
    for lb in (lb_id, unknown_lb()):
        for call in (
            lambda lb=lb: them.describe_load_balancer_attribute(slb.DescribeLoadBalancerAttributeRequest(
                region_id=REGION, load_balancer_id=lb)),
            lambda lb=lb: them.delete_load_balancer(slb.DeleteLoadBalancerRequest(region_id=REGION, load_balancer_id=lb)),
            lambda lb=lb: them.add_backend_servers(slb.AddBackendServersRequest(
                region_id=REGION, load_balancer_id=lb, backend_servers=servers)),
            lambda lb=lb: them.describe_health_status(slb.DescribeHealthStatusRequest(
                region_id=REGION, load_balancer_id=lb)),
            lambda lb=lb: them.create_load_balancer_udplistener(slb.CreateLoadBalancerUDPListenerRequest(
                region_id=REGION, load_balancer_id=lb, listener_port=53, backend_server_port=53, bandwidth=-1)),
        ):
            e = expect_error(call, "InvalidLoadBalancerId.NotFound")
            assert lb in e.data["Message"]
    listed = them.describe_load_balancers(slb.DescribeLoadBalancersRequest(region_id=REGION, load_balancer_id=lb_id)).body
    assert listed.total_count == 0
    assert lbs.attribute(lb_id).load_balancer_name == "mine"


def servers_json(*items) -> str:
    import json
    return json.dumps(list(items))


def add(lbs, lb_id, *items):
    return lbs.c.add_backend_servers(slb.AddBackendServersRequest(
        region_id=REGION, load_balancer_id=lb_id, backend_servers=servers_json(*items))).body


def remove(lbs, lb_id, *items):
    return lbs.c.remove_backend_servers(slb.RemoveBackendServersRequest(
        region_id=REGION, load_balancer_id=lb_id, backend_servers=servers_json(*items))).body


def set_servers(lbs, lb_id, *items):
    return lbs.c.set_backend_servers(slb.SetBackendServersRequest(
        region_id=REGION, load_balancer_id=lb_id, backend_servers=servers_json(*items))).body


def health(lbs, lb_id, **kw):
    return lbs.c.describe_health_status(slb.DescribeHealthStatusRequest(
        region_id=REGION, load_balancer_id=lb_id, **kw)).body.backend_servers.backend_server


def test_backend_servers(lbs, ares):
    lb_id = lbs.lb()
    eni = ares.eni()
    port = ares.hres.port()
    ip = port.fixed_ips[0].ip_address
    got = add(lbs, lb_id,
              {"ServerId": eni, "Type": "eni", "Description": "sensor-1"},
              {"ServerId": ip, "Type": "ip", "Weight": "30", "Port": 6081},
              # The same server and port again in one request: only the first is taken.
              {"ServerId": eni, "Type": "eni", "Weight": 7})
    assert got.load_balancer_id == lb_id
    servers = [(s.server_id, s.type, s.weight, s.description) for s in got.backend_servers.backend_server]
    assert servers == [(eni, "eni", "100", "sensor-1"), (ip, "ip", "30", "")]

    attr = lbs.attribute(lb_id).backend_servers.backend_server
    assert [(s.server_id, s.type, s.weight) for s in attr] == [(eni, "eni", 100), (ip, "ip", 30)]
    assert attr[1].server_ip == ip and attr[0].server_ip.startswith("198.18.")
    assert lbs.describe(server_id=eni, load_balancer_id=lb_id).total_count == 1
    assert lbs.describe(server_id=ares.eni(), load_balancer_id=lb_id).total_count == 0
    assert lbs.describe(server_intranet_address=ip, load_balancer_id=lb_id).total_count == 1
    assert lbs.describe(server_intranet_address="192.0.2.77", load_balancer_id=lb_id).total_count == 0

    # Without a listener there is no check: every server is "unavailable", on its own port.
    h = health(lbs, lb_id)
    assert [(s.server_id, s.port, s.server_health_status) for s in h] == [
        (eni, 4789, "unavailable"), (ip, 6081, "unavailable")]

    got = set_servers(lbs, lb_id, {"ServerId": ip, "Weight": 0}, {"ServerId": eni, "Description": "renamed"})
    assert [(s.server_id, s.weight, s.description) for s in got.backend_servers.backend_server] == [
        (eni, "100", "renamed"), (ip, "0", "")]
    got = remove(lbs, lb_id, {"ServerId": eni, "Type": "eni"})
    assert [s.server_id for s in got.backend_servers.backend_server] == [ip]
    # The same address on another port is another backend server.
    got = add(lbs, lb_id, {"ServerId": ip, "Type": "ip", "Port": 4789})
    assert [s.server_id for s in lbs.attribute(lb_id).backend_servers.backend_server] == [ip, ip]
    assert [s.port for s in health(lbs, lb_id)] == [6081, 4789]
    got = remove(lbs, lb_id, {"ServerId": ip, "Type": "ip", "Port": 6081})
    assert len(got.backend_servers.backend_server) == 1


def test_backend_server_errors_change_nothing(lbs, ares):
    lb_id = lbs.lb()
    eni = ares.eni()
    add(lbs, lb_id, {"ServerId": eni, "Type": "eni"})
    before = lbs.attribute(lb_id).backend_servers.to_map()
    unknown_eni = "eni-" + uuid.uuid4().hex
    fresh = ares.eni()
    for items, code in (
        # A good server first: the call is all or nothing.
        (({"ServerId": fresh, "Type": "eni"}, {"ServerId": eni, "Type": "eni"}), "DuplicatedParam.BackendServers"),
        (({"ServerId": fresh, "Type": "eni"}, {"ServerId": unknown_eni, "Type": "eni"}), "ResourceNotFound.NetworkInterface"),
        (({"ServerId": "i-bp1h5u3fv54ytf", "Type": "ecs"},), "InvalidParameter"),
        (({"ServerId": fresh},), "InvalidParameter"),  # SLB's default type is ecs
        (({"ServerId": "192.0.2.1", "Type": "ip"},), "IllegalParam.ServerIp"),  # not the project's
        (({"ServerId": "not-an-ip", "Type": "ip"},), "InvalidParameter"),
        (({"ServerId": fresh, "Type": "eni", "Weight": 101},), "InvalidParameter"),
        (({"ServerId": fresh, "Type": "eni", "Port": 0},), "InvalidParameter"),
        (({"Type": "eni"},), "MissingParameter"),
        (tuple({"ServerId": f"10.9.0.{i}", "Type": "ip"} for i in range(21)), "InvalidParameter"),
    ):
        e = expect_error(lambda items=items: add(lbs, lb_id, *items), code)
        assert not CANONICAL.search(e.data["Message"]), e.data  # the face's ids only
    expect_error(lambda: lbs.c.add_backend_servers(slb.AddBackendServersRequest(
        region_id=REGION, load_balancer_id=lb_id, backend_servers="{not json")), "InvalidParameter")
    expect_error(lambda: lbs.c.add_backend_servers(slb.AddBackendServersRequest(
        region_id=REGION, load_balancer_id=lb_id)), "MissingParameter")
    expect_error(lambda: remove(lbs, lb_id, {"ServerId": fresh, "Type": "eni"}), "ResourceNotFound.BackendServer")
    expect_error(lambda: set_servers(lbs, lb_id, {"ServerId": eni, "Weight": 5}, {"ServerId": fresh, "Weight": 5}),
                 "ResourceNotFound.BackendServer")
    expect_error(lambda: add(lbs, unknown_lb(), {"ServerId": fresh, "Type": "eni"}), "InvalidLoadBalancerId.NotFound")
    assert lbs.attribute(lb_id).backend_servers.to_map() == before
    expect_error(lambda: health(lbs, lb_id, listener_port=53), "InvalidParameter.ListenerNotFound")


def loopback_ip() -> str:
    """A loopback address for a collector's port: the health checker probes it, and loopback is
    the only place a conformance test may send to."""
    return f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def wait_for(probe, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout:.0f} s")
        time.sleep(0.2)


def listener(lbs, lb_id, **kw):
    kw.setdefault("listener_port", 53)
    kw.setdefault("backend_server_port", 4789)
    kw.setdefault("bandwidth", -1)
    return lbs.c.create_load_balancer_udplistener(slb.CreateLoadBalancerUDPListenerRequest(
        region_id=REGION, load_balancer_id=lb_id, **kw))


def show_listener(lbs, lb_id, port=53):
    return lbs.c.describe_load_balancer_udplistener_attribute(
        slb.DescribeLoadBalancerUDPListenerAttributeRequest(
            region_id=REGION, load_balancer_id=lb_id, listener_port=port)).body


def start(lbs, lb_id, port=53):
    return lbs.c.start_load_balancer_listener(slb.StartLoadBalancerListenerRequest(
        region_id=REGION, load_balancer_id=lb_id, listener_port=port))


def stop(lbs, lb_id, port=53):
    return lbs.c.stop_load_balancer_listener(slb.StopLoadBalancerListenerRequest(
        region_id=REGION, load_balancer_id=lb_id, listener_port=port))


def delete_listener(lbs, lb_id, port=53):
    return lbs.c.delete_load_balancer_listener(slb.DeleteLoadBalancerListenerRequest(
        region_id=REGION, load_balancer_id=lb_id, listener_port=port, listener_protocol="udp"))


def statuses(lbs, lb_id, **kw):
    return {s.server_ip: s.server_health_status for s in health(lbs, lb_id, **kw)}


@pytest.fixture
def collector():
    """A UDP socket on a loopback address: it answers the UDP check by not refusing it."""
    ip = loopback_ip()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ip, 0))
    yield ip, sock.getsockname()[1]
    sock.close()


def test_udp_listener_sets_the_health_check(lbs, ares, collector):
    up_ip, port = collector
    down_ip = loopback_ip()  # nothing listens there: the check is refused
    up = ares.hres.port(fixed_ip=up_ip)
    ares.hres.port(fixed_ip=down_ip)
    lb_id = lbs.lb()
    add(lbs, lb_id, {"ServerId": alisupport.eni(up.id), "Type": "eni", "Port": port},
        {"ServerId": down_ip, "Type": "ip", "Port": port})

    listener(lbs, lb_id, health_check_interval=1, healthy_threshold=2, unhealthy_threshold=2,
             health_check_connect_timeout=1, health_check_req="hello", health_check_exp="ok",
             description="mirror", scheduler="sch")
    l = show_listener(lbs, lb_id)
    assert (l.listener_port, l.backend_server_port, l.bandwidth, l.status) == (53, 4789, -1, "stopped")
    assert (l.health_check, l.health_check_interval, l.health_check_connect_timeout) == ("on", 1, 1)
    assert (l.healthy_threshold, l.unhealthy_threshold, l.scheduler) == (2, 2, "sch")
    assert (l.health_check_req, l.health_check_exp, l.description) == ("hello", "ok", "mirror")
    attr = lbs.attribute(lb_id)
    assert attr.listener_ports.listener_port == [53]
    assert [(p.listener_port, p.listener_protocol) for p in attr.listener_ports_and_protocol.listener_port_and_protocol] == [(53, "udp")]
    # A stopped listener checks nothing.
    assert set(statuses(lbs, lb_id).values()) == {"unavailable"}

    start(lbs, lb_id)
    assert show_listener(lbs, lb_id).status == "running"
    wait_for(lambda: statuses(lbs, lb_id) == {up_ip: "normal", down_ip: "abnormal"}, "verdicts")
    h = health(lbs, lb_id, listener_port=53)
    assert {(s.listener_port, s.protocol) for s in h} == {(53, "udp")}

    lbs.c.set_load_balancer_udplistener_attribute(slb.SetLoadBalancerUDPListenerAttributeRequest(
        region_id=REGION, load_balancer_id=lb_id, listener_port=53, healthy_threshold=3,
        health_check_interval=2, description="renamed"))
    l = show_listener(lbs, lb_id)
    assert (l.healthy_threshold, l.health_check_interval, l.description, l.status) == (3, 2, "renamed", "running")
    # Alibaba waits max(timeout, interval); the given timeout is shown back as given.
    assert l.health_check_connect_timeout == 1

    stop(lbs, lb_id)
    assert set(statuses(lbs, lb_id).values()) == {"unavailable"}
    delete_listener(lbs, lb_id)
    assert lbs.attribute(lb_id).listener_ports.listener_port == []
    expect_error(lambda: show_listener(lbs, lb_id), "InvalidParameter.ListenerNotFound")
    expect_error(lambda: delete_listener(lbs, lb_id), "InvalidParameter.ListenerNotFound")


def test_listener_errors_change_nothing(lbs):
    lb_id = lbs.lb()
    for kw, code in (
        ({"healthy_threshold": 11}, "InvalidParameter"),
        ({"unhealthy_threshold": 1}, "InvalidParameter"),
        ({"health_check_interval": 51}, "InvalidParameter"),
        ({"health_check_connect_timeout": 301}, "InvalidParameter"),
        ({"listener_port": 0}, "InvalidParameter"),
        ({"bandwidth": 0}, "InvalidParameter"),
        ({"scheduler": "random"}, "InvalidParameter"),
        ({"health_check_switch": "maybe"}, "InvalidParameter"),
        ({"vserver_group_id": "rsp-1"}, "InvalidParameter"),
        ({"acl_status": "on", "acl_id": "acl-1"}, "InvalidParameter"),
        ({"proxy_protocol_v2enabled": True}, "InvalidParameter"),
        ({"bandwidth": None}, "MissingParameter"),
        ({"backend_server_port": None}, "MissingParameter"),
    ):
        expect_error(lambda kw=kw: listener(lbs, lb_id, **kw), code)
    assert lbs.attribute(lb_id).listener_ports.listener_port == []
    listener(lbs, lb_id)
    expect_error(lambda: listener(lbs, lb_id), "ListenerAlreadyExists")
    expect_error(lambda: listener(lbs, lb_id, listener_port=54), "QuotaExceeded.ListenerNum")
    expect_error(lambda: start(lbs, lb_id, port=54), "InvalidParameter.ListenerNotFound")
    expect_error(lambda: listener(lbs, unknown_lb()), "InvalidLoadBalancerId.NotFound")
    expect_error(lambda: lbs.c.set_load_balancer_udplistener_attribute(slb.SetLoadBalancerUDPListenerAttributeRequest(
        region_id=REGION, load_balancer_id=lb_id, listener_port=53, healthy_threshold=1)), "InvalidParameter")
    l = show_listener(lbs, lb_id)
    # Alibaba's defaults for a UDP listener's check.
    assert (l.health_check, l.health_check_interval, l.health_check_connect_timeout) == ("on", 2, 5)
    assert (l.healthy_threshold, l.unhealthy_threshold, l.scheduler, l.status) == (3, 3, "wrr", "stopped")
    # A load balancer with a listener is deleted with it.
    lbs.delete(lb_id)
    expect_error(lambda: show_listener(lbs, lb_id), "InvalidLoadBalancerId.NotFound")


def huawei_status(res, session_id):
    """The Huawei face's `status` of a session, from the body as sent: the SDK's model has no such
    field (and parses the body all the same)."""
    resp = res.show_session(session_id)
    assert resp.traffic_mirror_session.id == session_id
    return json.loads(resp.raw_content)["traffic_mirror_session"]["status"]


def huawei_listed_status(res, session_id):
    resp = res.v3.list_traffic_mirror_sessions(hv3.ListTrafficMirrorSessionsRequest(id=session_id))
    assert [s.id for s in resp.traffic_mirror_sessions] == [session_id]
    return json.loads(resp.raw_content)["traffic_mirror_sessions"][0]["status"]


def states(ares, res, sid):
    """(Alibaba's business status, Huawei's status) of one session, the Huawei list and show
    agreeing. The health checker may change a member's verdict between two reads (CI saw the
    list say ACTIVE and the show DEGRADED while a check was failing the member), so the views
    are read again until the Huawei status is the same before and after the others."""
    hid = alisupport.uuid_of(sid)
    for _ in range(5):
        listed = huawei_listed_status(res, hid)
        shown = huawei_status(res, hid)
        business = ares.show_session(sid).traffic_mirror_session_business_status
        again = huawei_listed_status(res, hid)
        if listed == shown == again:
            return business, shown
    raise AssertionError(f"the Huawei list and show keep disagreeing: {listed} / {shown} / {again}")


def test_a_session_aimed_at_an_slb_load_balancer_shows_its_state(lbs, ares, res, collector):
    up_ip, port = collector
    lb_id = lbs.lb(load_balancer_name="sensors")
    sid = ares.session(target=lb_id, traffic_mirror_target_type="SLB", enabled=True)
    s = ares.show_session(sid)
    assert (s.traffic_mirror_target_id, s.traffic_mirror_target_type) == (lb_id, "SLB")
    assert s.traffic_mirror_session_status == "Created"
    h = res.show_session(alisupport.uuid_of(sid)).traffic_mirror_session
    assert (h.traffic_mirror_target_type, h.traffic_mirror_target_id) == ("elb", alisupport.uuid_of(lb_id))
    assert ares.list_sessions(traffic_mirror_target_id=lb_id).total_count == "1"
    # No backend server: the copies have nowhere to go, and the session says so on both faces.
    assert states(ares, res, sid) == ("NoBackendServer", "DOWN")
    expect_error(lambda: lbs.delete(lb_id), "DependencyViolation.TrafficMirrorSession")

    down_ip = loopback_ip()  # nothing listens there
    ares.hres.port(fixed_ip=down_ip)
    add(lbs, lb_id, {"ServerId": down_ip, "Type": "ip", "Port": port})
    # Not checked yet: taken as healthy.
    assert states(ares, res, sid) == ("Normal", "ACTIVE")
    set_servers(lbs, lb_id, {"ServerId": down_ip, "Weight": 0})  # takes no flows
    assert states(ares, res, sid) == ("NoBackendServer", "DOWN")
    set_servers(lbs, lb_id, {"ServerId": down_ip, "Weight": 10})
    listener(lbs, lb_id, health_check_interval=1, healthy_threshold=2, unhealthy_threshold=2,
             health_check_connect_timeout=1)
    start(lbs, lb_id)
    # Every server fails its check: copies go to all of them (fail open), and the state says so.
    wait_for(lambda: states(ares, res, sid) == ("BackendServerAbnormal", "DEGRADED"), "degraded state")

    up = ares.hres.port(fixed_ip=up_ip)
    add(lbs, lb_id, {"ServerId": alisupport.eni(up.id), "Type": "eni", "Port": port})
    wait_for(lambda: statuses(lbs, lb_id) == {up_ip: "normal", down_ip: "abnormal"}, "verdicts")
    assert states(ares, res, sid) == ("Normal", "ACTIVE")

    ares.delete_session(sid)
    lbs.delete(lb_id)


def test_a_member_that_is_a_source_of_its_own_load_balancers_session_is_refused(lbs, ares, res, ali):
    """Copies delivered to such a member would be mirrored again (and again): refused both ways,
    on both faces, and nothing changes."""
    src_port, member_port = ares.hres.port(), ares.hres.port()
    src, member = alisupport.eni(src_port.id), alisupport.eni(member_port.id)
    src_ip = src_port.fixed_ips[0].ip_address
    lb_id = lbs.lb()
    add(lbs, lb_id, {"ServerId": member, "Type": "eni"})
    sid = ares.session(sources=[src], target=lb_id, traffic_mirror_target_type="SLB")

    # A source of a session aimed at the load balancer cannot become its backend server, by ENI
    # or by address (on any port).
    before = lbs.attribute(lb_id).backend_servers.to_map()
    for item in ({"ServerId": src, "Type": "eni"}, {"ServerId": src_ip, "Type": "ip", "Port": 6081}):
        e = expect_error(lambda item=item: add(lbs, lb_id, item), "OperationDenied.DuplicateRole")
        assert src in e.data["Message"]
    assert lbs.attribute(lb_id).backend_servers.to_map() == before

    # A backend server cannot become a source of a session aimed at its load balancer.
    expect_error(lambda: ares.create_session(sources=[member], target=lb_id, traffic_mirror_target_type="SLB"),
                 "OperationDenied.DuplicateRole")
    expect_error(lambda: ali.add_sources_to_traffic_mirror_session(vpc.AddSourcesToTrafficMirrorSessionRequest(
        region_id=REGION, traffic_mirror_session_id=sid, traffic_mirror_source_ids=[member])),
        "OperationDenied.DuplicateRole")
    assert ares.show_session(sid).traffic_mirror_source_ids == [src]
    elsewhere = ares.session(sources=[member])
    expect_error(lambda: ali.update_traffic_mirror_session_attribute(vpc.UpdateTrafficMirrorSessionAttributeRequest(
        region_id=REGION, traffic_mirror_session_id=elsewhere, traffic_mirror_target_id=lb_id,
        traffic_mirror_target_type="SLB")), "OperationDenied.DuplicateRole")
    assert ares.show_session(elsewhere).traffic_mirror_target_type == "NetworkInterface"

    # The same rules through the Huawei face.
    lb_uuid = alisupport.uuid_of(lb_id)
    hwsupport.expect_error(lambda: res.create_session(sources=[member_port.id], target=lb_uuid, target_type="elb"),
                           400, "VPC.1713")
    hwsupport.expect_error(lambda: res.add_sources(alisupport.uuid_of(sid), [member_port.id]), 400, "VPC.1713")
    hwsupport.expect_error(lambda: res.update_session(alisupport.uuid_of(elsewhere), traffic_mirror_target_id=lb_uuid,
                                                      traffic_mirror_target_type="elb"), 400, "VPC.1713")
    assert ares.show_session(sid).traffic_mirror_source_ids == [src]
    assert lbs.attribute(lb_id).backend_servers.to_map() == before
