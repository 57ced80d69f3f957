"""Elastic IPs through the official `huaweicloudsdkeip` client (v2 module, the /v1/publicips
API), and sessions of `type="eip"` through `huaweicloudsdkvpc` (docs/eips.md).

The operator makes a pool for each test through the admin API (the SDK has no client for it);
the suite's member tenant allocates, associates and releases its EIPs with the SDK."""

from __future__ import annotations

import ipaddress
import itertools
import random

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkeip import v2 as eip

import hwsupport
from hwsupport import expect_error, raw, short

# Each test's pool: a /29 of its own in 100.64.0.0/10, starting at a random place so that runs
# on one PostgreSQL database do not collide.
_blocks = itertools.count(random.randrange(0, 4096) * 8)


def _next_block():
    n = next(_blocks) * 8 % (1 << 22)
    return f"100.{64 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}/29"


@pytest.fixture
def pool(server):
    """A fresh pool bound to a gateway; (pool id, CIDR). Deleted at the end."""
    op = server.operator
    pool_id, cidr = f"bgp_{short()}", _next_block()
    status, body = hwsupport.admin_call(server.endpoint, op.access_key, op.secret_key, "PUT",
                                        f"/admin/v1/eip-pools/{pool_id}",
                                        {"cidrs": [cidr], "host_id": "gw-conf", "interface_name": "eth-ext"})
    assert status == 200, body
    yield pool_id, cidr
    hwsupport.admin_call(server.endpoint, op.access_key, op.secret_key, "DELETE",
                         f"/admin/v1/eip-pools/{pool_id}")


@pytest.fixture(scope="module")
def eips(server):
    cfg = hwsupport.http_config(server.endpoint)
    cfg.timeout = (5, 60)
    creds = BasicCredentials(server.access_key, server.secret_key, server.project_id)
    return (eip.EipClient.new_builder().with_http_config(cfg).with_credentials(creds)
            .with_endpoints([server.endpoint]).build())


class Eips:
    """Allocates through the SDK and releases what is left at the end."""

    def __init__(self, client):
        self.client, self.ids = client, []

    def create(self, pool_id, ip_address=None, port_id=None, alias=None):
        publicip = eip.CreatePublicipOption(type=pool_id, ip_version=4, ip_address=ip_address,
                                            port_id=port_id, alias=alias)
        bandwidth = eip.CreatePublicipBandwidthOption(name=f"bw-{short()}", size=10, share_type="PER",
                                                      charge_mode="traffic")
        resp = self.client.create_publicip(eip.CreatePublicipRequest(
            eip.CreatePublicipRequestBody(bandwidth=bandwidth, publicip=publicip)))
        self.ids.append(resp.publicip.id)
        return resp.publicip

    def show(self, eip_id):
        return self.client.show_publicip(eip.ShowPublicipRequest(publicip_id=eip_id)).publicip

    def update(self, eip_id, **kw):
        body = eip.UpdatePublicipsRequestBody(publicip=eip.UpdatePublicipOption(**kw))
        return self.client.update_publicip(eip.UpdatePublicipRequest(publicip_id=eip_id, body=body))

    def delete(self, eip_id):
        return self.client.delete_publicip(eip.DeletePublicipRequest(publicip_id=eip_id))

    def cleanup(self):
        for eip_id in reversed(self.ids):
            try:
                self.delete(eip_id)
            except Exception:  # noqa: BLE001 - gone already, or still mirrored by a failed test
                pass


@pytest.fixture
def eip_res(eips, res, pool):
    # Torn down before `pool` (which needs its EIPs gone) and after the sessions of `res`,
    # which it cleans up first: a mirrored EIP cannot be released.
    e = Eips(eips)
    yield e
    res.cleanup()
    e.cleanup()


def test_create_show_list_delete(eip_res, pool, eips):
    pool_id, cidr = pool
    first = eip_res.create(pool_id, alias="web")
    assert first.status == "DOWN"
    assert first.type == pool_id
    assert first.ip_version == 4
    # The pool's first usable address.
    assert first.public_ip_address == str(ipaddress.ip_network(cidr)[1])
    assert first.bandwidth_size == 10
    assert hwsupport.UUID_RE.match(first.id)
    shown = eip_res.show(first.id)
    assert (shown.id, shown.public_ip_address, shown.alias) == (first.id, first.public_ip_address, "web")
    assert shown.bandwidth_share_type == "PER"
    assert shown.port_id is None and shown.private_ip_address is None
    wire = raw(eips.show_publicip(eip.ShowPublicipRequest(publicip_id=first.id)))["publicip"]
    assert "port_id" not in wire, wire
    listed = eips.list_publicips(eip.ListPublicipsRequest(id=[first.id])).publicips
    assert [p.id for p in listed] == [first.id]
    eip_res.delete(first.id)
    expect_error(lambda: eip_res.show(first.id), 404, "VPC.0504")


def test_explicit_addresses_and_errors(eip_res, pool):
    pool_id, cidr = pool
    wanted = str(ipaddress.ip_network(cidr)[5])
    got = eip_res.create(pool_id, ip_address=wanted)
    assert got.public_ip_address == wanted
    expect_error(lambda: eip_res.create(pool_id, ip_address=wanted), 409, "VPC.1711")
    expect_error(lambda: eip_res.create(pool_id, ip_address="203.0.113.1"), 400, "VPC.0101")
    expect_error(lambda: eip_res.create(f"nopool_{short()}"), 400, "VPC.0101")


def test_associate_and_dissociate(eip_res, res, pool):
    pool_id, _ = pool
    port = res.port()
    e = eip_res.create(pool_id)
    up = eip_res.update(e.id, port_id=port.id).publicip
    assert (up.status, up.port_id) == ("ACTIVE", port.id)
    assert up.private_ip_address == port.fixed_ips[0].ip_address
    other = eip_res.create(pool_id)
    expect_error(lambda: eip_res.update(other.id, port_id=port.id), 409, "VPC.1711")
    down = eip_res.update(e.id, port_id="").publicip
    assert down.status == "DOWN" and down.port_id is None


def test_eip_sessions(eip_res, res, pool):
    pool_id, _ = pool
    e1, e2 = eip_res.create(pool_id), eip_res.create(pool_id)
    s = res.session(sources=[e1.id], type="eip")
    assert s.type == "eip"
    assert s.traffic_mirror_sources == [e1.id]
    # All of one type: a port in an eip session, an EIP in an eni session are unknown sources.
    expect_error(lambda: res.create_session(sources=[res.port().id], type="eip"), 404, "VPC.0504")
    expect_error(lambda: res.create_session(sources=[e2.id]), 404, "VPC.1704")
    grown = res.add_sources(s.id, [e2.id]).traffic_mirror_session
    assert grown.traffic_mirror_sources == [e1.id, e2.id]
    # A mirrored EIP is not released.
    expect_error(lambda: eip_res.delete(e1.id), 409, "VPC.1711")
