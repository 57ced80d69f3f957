"""v1 ports through the SDK's v2 client: create, show, list, update, delete (reference §1.2, §8),
plus the two binding attributes tmirror's data plane uses (issue 3, point 4)."""

import pytest
from huaweicloudsdkvpc import v2 as hv2

from hwsupport import (MAC_RE, NETWORK_ID, SUBNET_ID, UUID_RE, UpdatePortOptionWithBinding, admin_call,
                       expect_error, next_ip, raw, short, uid)


def assert_port_shape(p, project_id):
    assert UUID_RE.match(p["id"])
    assert isinstance(p["name"], str)
    assert isinstance(p["network_id"], str)
    assert p["admin_state_up"] is True, "admin_state_up must be a JSON boolean"
    assert MAC_RE.match(p["mac_address"]), p["mac_address"]
    assert isinstance(p["fixed_ips"], list)
    assert isinstance(p["device_owner"], str)
    assert p["status"] in ("ACTIVE", "BUILD", "DOWN")
    assert p["tenant_id"] == project_id
    assert isinstance(p["security_groups"], list)


def test_create(res, project_id):
    ip = next_ip()
    name = f"port-{short()}"
    resp = res.create_port(name=name, fixed_ip=ip)
    assert resp.status_code == 201
    p = raw(resp)["port"]
    assert_port_shape(p, project_id)
    assert p["name"] == name
    assert p["network_id"] == NETWORK_ID
    assert p["fixed_ips"] == [{"subnet_id": SUBNET_ID, "ip_address": ip}]
    assert p["device_owner"] == ""
    m = resp.port
    assert isinstance(m, hv2.Port)
    assert (m.id, m.name, m.admin_state_up) == (p["id"], name, True)
    assert m.fixed_ips[0].ip_address == ip and m.fixed_ips[0].subnet_id == SUBNET_ID


def test_mac_addresses_are_distinct(res):
    macs = {res.port().mac_address for _ in range(3)}
    assert len(macs) == 3


def test_create_with_binding_attributes(operator_res):
    # Bindings are the operator's (docs/security.md): its own credential sets them on the face.
    res = operator_res
    profile = {"interface_name": "veth-conf0", "capture_side": "host"}
    resp = res.create_port(binding_host_id="host-a", binding_profile=profile)
    assert resp.status_code == 201
    p = raw(resp)["port"]
    assert p["binding:host_id"] == "host-a"
    assert p["binding:profile"]["interface_name"] == "veth-conf0"
    assert p["binding:profile"]["capture_side"] == "host"
    shown = raw(res.show_port(p["id"]))["port"]
    assert shown["binding:host_id"] == "host-a"
    assert shown["binding:profile"]["interface_name"] == "veth-conf0"
    assert shown["binding:profile"]["capture_side"] == "host"
    # The SDK's Port model exposes binding:profile as `bindingprofile`.
    assert res.show_port(p["id"]).port.bindingprofile["capture_side"] == "host"
    guest = raw(res.create_port(binding_host_id="host-b",
                                binding_profile={"capture_side": "guest"}))["port"]
    assert guest["binding:profile"]["capture_side"] == "guest"


def test_create_rejects_an_unknown_capture_side(operator_res):
    res = operator_res
    before = [p.id for p in res.v2.list_ports(hv2.ListPortsRequest()).ports]
    expect_error(lambda: res.create_port(binding_host_id="h", binding_profile={"capture_side": "sideways"}),
                 400, "VPC.0101")
    assert [p.id for p in res.v2.list_ports(hv2.ListPortsRequest()).ports] == before


@pytest.mark.parametrize("binding", [
    {"binding_host_id": "host-a"},
    {"binding_profile": {"interface_name": "tap-mine"}},
    {"binding_host_id": "host-a", "binding_profile": {"interface_name": "tap-mine", "capture_side": "guest"}},
])
def test_a_member_sets_no_binding(res, binding):
    # The suite's member key: 403 VPC.0010 in the v1 body, on create and on update, and nothing changes.
    before = [p.id for p in res.v2.list_ports(hv2.ListPortsRequest()).ports]
    e = expect_error(lambda: res.create_port(**binding), 403, "VPC.0010")
    assert "binding" in e.error_msg
    assert [p.id for p in res.v2.list_ports(hv2.ListPortsRequest()).ports] == before
    created = raw(res.create_port())["port"]
    e = expect_error(lambda: update_port(res, created["id"], UpdatePortOptionWithBinding(name="renamed", **binding)),
                     403, "VPC.0010")
    assert "binding" in e.error_msg
    assert raw(res.show_port(created["id"]))["port"] == created


def test_the_operator_binds_a_members_port_through_the_admin_api(server, res):
    # The member sees the binding the operator set (PUT /admin/v1/ports/{id}/binding) through the SDK.
    port = raw(res.create_port())["port"]
    assert port["binding:host_id"] == ""
    op = server.operator
    status, body = admin_call(server.endpoint, op.access_key, op.secret_key, "PUT",
                              f"/admin/v1/ports/{port['id']}/binding",
                              {"host_id": "host-conf", "interface_name": f"tap-{short()}", "capture_side": "guest"})
    assert status == 200, body
    assert (body["port"]["project_id"], body["port"]["host_id"]) == (server.project_id, "host-conf")
    shown = res.show_port(port["id"])
    assert raw(shown)["port"]["binding:host_id"] == "host-conf"
    assert shown.port.bindingprofile == body["port"]["profile"]
    assert shown.port.bindingprofile["capture_side"] == "guest"
    # The member's key does not reach the operator's call.
    status, body = admin_call(server.endpoint, server.access_key, server.secret_key, "PUT",
                              f"/admin/v1/ports/{port['id']}/binding", {"host_id": "host-x"})
    assert status == 403 and "Forbidden" in str(body), body
    assert raw(res.show_port(port["id"]))["port"]["binding:host_id"] == "host-conf"


def test_show(res, project_id):
    created = raw(res.create_port())["port"]
    resp = res.show_port(created["id"])
    assert resp.status_code == 200
    p = raw(resp)["port"]
    assert_port_shape(p, project_id)
    for k in ("id", "name", "network_id", "mac_address", "fixed_ips", "device_owner", "status", "tenant_id"):
        assert p[k] == created[k], k


def test_list(res, project_id):
    a, b = res.port(), res.port()
    resp = res.v2.list_ports(hv2.ListPortsRequest())
    assert resp.status_code == 200
    body = raw(resp)
    ids = [p["id"] for p in body["ports"]]
    assert ids.index(a.id) < ids.index(b.id), "creation order"
    for p in body["ports"]:
        assert_port_shape(p, project_id)


def test_list_filters(res):
    net = uid()
    ip1, ip2 = next_ip(), next_ip()
    subnet = uid()
    a = res.port(name=f"pa-{short()}", network_id=net, fixed_ip=ip1)
    b = res.port(name=f"pb-{short()}", network_id=net,
                 fixed_ip=False, fixed_ips=[hv2.FixedIp(subnet_id=subnet, ip_address=ip2)])
    c = res.port()

    def ids(**q):
        return [p.id for p in res.v2.list_ports(hv2.ListPortsRequest(**q)).ports]

    assert ids(id=[a.id]) == [a.id]
    assert ids(id=[c.id, a.id]) == [a.id, c.id], "repeated id keys, creation order"
    assert ids(name=a.name) == [a.id]
    assert ids(network_id=net) == [a.id, b.id]
    assert ids(network_id=net, name=b.name) == [b.id], "AND across keys"
    assert ids(network_id=net, name=c.name) == []
    assert ids(mac_address=b.mac_address) == [b.id]
    assert ids(fixed_ips=[f"ip_address={ip1}"]) == [a.id]
    assert ids(fixed_ips=[f"subnet_id={subnet}"]) == [b.id]
    assert ids(id=[a.id, b.id, c.id], device_owner="") == [a.id, b.id, c.id]
    assert ids(id=[a.id, b.id], status=a.status) == [a.id, b.id]


def test_list_limit_and_marker(res):
    ports = [res.port().id for _ in range(5)]

    def ids(**q):
        return [p.id for p in res.v2.list_ports(hv2.ListPortsRequest(id=ports, **q)).ports]

    assert ids() == ports
    assert ids(limit=2) == ports[:2]
    # The query starts at the record after the marker.
    assert ids(limit=2, marker=ports[1]) == ports[2:4]
    assert ids(marker=ports[3]) == ports[4:]
    assert ids(marker=ports[4]) == []


def test_list_unknown_marker_is_refused(res):
    # "An invalid marker yields 400" (neutron-style lists, §6); docs/huawei-errors.md: VPC.0101.
    expect_error(lambda: res.v2.list_ports(hv2.ListPortsRequest(marker=uid())), 400, "VPC.0101")


def test_admin_state_up_must_be_true(res):
    # CreatePort: admin_state_up "only true" (§8).
    before = [p.id for p in res.v2.list_ports(hv2.ListPortsRequest()).ports]
    expect_error(lambda: res.create_port(admin_state_up=False), 400, "VPC.0101")
    assert [p.id for p in res.v2.list_ports(hv2.ListPortsRequest()).ports] == before
    assert res.port(admin_state_up=True).admin_state_up is True


def test_update_name(res, project_id):
    created = raw(res.create_port())["port"]
    new = f"renamed-{short()}"
    resp = res.v2.update_port(hv2.UpdatePortRequest(created["id"], hv2.UpdatePortRequestBody(
        hv2.UpdatePortOption(name=new))))
    assert resp.status_code == 200
    p = raw(resp)["port"]
    assert_port_shape(p, project_id)
    assert p["name"] == new
    for k in ("id", "network_id", "mac_address", "fixed_ips"):
        assert p[k] == created[k], k
    assert raw(res.show_port(created["id"]))["port"]["name"] == new


def update_port(res, port_id, option):
    return res.v2.update_port(hv2.UpdatePortRequest(port_id, hv2.UpdatePortRequestBody(option)))


def test_update_security_groups(res):
    created = raw(res.create_port())["port"]
    sg = [uid(), uid()]
    p = raw(update_port(res, created["id"], hv2.UpdatePortOption(security_groups=sg)))["port"]
    assert p["security_groups"] == sg
    assert p["name"] == created["name"]
    assert raw(res.show_port(created["id"]))["port"]["security_groups"] == sg


def test_update_binding_attributes(operator_res):
    res = operator_res
    created = raw(res.create_port(binding_host_id="host-a",
                                  binding_profile={"interface_name": "tap-a", "capture_side": "guest"}))["port"]
    p = raw(update_port(res, created["id"], UpdatePortOptionWithBinding(
        binding_host_id="host-b", binding_profile={"interface_name": "tap-b", "capture_side": "host"})))["port"]
    assert p["binding:host_id"] == "host-b"
    assert (p["binding:profile"]["interface_name"], p["binding:profile"]["capture_side"]) == ("tap-b", "host")
    shown = raw(res.show_port(created["id"]))["port"]
    assert shown["binding:host_id"] == "host-b" and shown["binding:profile"]["capture_side"] == "host"
    assert shown["name"] == created["name"] and shown["fixed_ips"] == created["fixed_ips"]
    expect_error(lambda: update_port(res, created["id"], UpdatePortOptionWithBinding(
        binding_profile={"capture_side": "both"})), 400, "VPC.0101")
    assert raw(res.show_port(created["id"]))["port"]["binding:profile"]["capture_side"] == "host"


def test_list_by_security_group(res):
    # security_groups is a documented (repeatable) query filter of ListPorts (reference §8).
    sg1, sg2 = uid(), uid()
    a = res.port(security_groups=[sg1])
    b = res.port(security_groups=[sg2, sg1])
    c = res.port(security_groups=[sg2])

    def ids(**q):
        return [p.id for p in res.v2.list_ports(hv2.ListPortsRequest(id=[a.id, b.id, c.id], **q)).ports]

    assert ids(security_groups=[sg1]) == [a.id, b.id]
    assert ids(security_groups=[sg2]) == [b.id, c.id]
    assert ids(security_groups=[uid()]) == []


def test_delete(res):
    p = res.port()
    resp = res.delete_port(p.id)
    assert resp.status_code == 204
    expect_error(lambda: res.show_port(p.id), 404, "VPC.1704")
    assert p.id not in [x.id for x in res.v2.list_ports(hv2.ListPortsRequest()).ports]
    expect_error(lambda: res.delete_port(p.id), 404, "VPC.1704")


def test_unknown_port_id_is_404_everywhere(res):
    missing = uid()
    expect_error(lambda: res.show_port(missing), 404, "VPC.1704")
    expect_error(lambda: res.v2.update_port(hv2.UpdatePortRequest(missing, hv2.UpdatePortRequestBody(
        hv2.UpdatePortOption(name="x")))), 404, "VPC.1704")
    expect_error(lambda: res.delete_port(missing), 404, "VPC.1704")


@pytest.mark.parametrize("role", ["source", "target"])
def test_port_used_by_a_session_cannot_be_deleted(res, role):
    src, tgt = res.port_ids(2)
    s = res.session(sources=[src], target=tgt)
    victim = src if role == "source" else tgt
    expect_error(lambda: res.delete_port(victim), 409, "VPC.1711")
    assert res.show_port(victim).port.id == victim
    assert res.show_session(s.id).traffic_mirror_session.traffic_mirror_sources == [src]
    res.delete_session(s.id)
    assert res.delete_port(victim).status_code == 204
