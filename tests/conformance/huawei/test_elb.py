"""The ELB v3 subset through huaweicloudsdkelb (v3 ElbClient), as users stand up a load balancer
to mirror to: load balancer, UDP listener, UDP pool, members (one by one and in batches), TCP
health monitor, and a session with an `elb` target through huaweicloudsdkvpc
(docs/load-balancers.md)."""

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
import huaweicloudsdkelb.v3 as elb

import hwsupport
from hwsupport import admin_credential, admin_tenant


def client(endpoint, access_key, secret_key, project_id):
    cfg = hwsupport.http_config(endpoint)
    creds = BasicCredentials(access_key, secret_key, project_id)
    return (elb.ElbClient.new_builder().with_http_config(cfg).with_credentials(creds)
            .with_endpoints([endpoint]).build())


@pytest.fixture(scope="module")
def lbc(server):
    return client(server.endpoint, server.access_key, server.secret_key, server.project_id)


@pytest.fixture(scope="module")
def reader(server):
    op = server.operator
    c = admin_credential(server.endpoint, op.access_key, op.secret_key, server.project_id, "reader")
    return client(server.endpoint, c["access_key"], c["secret_key"], c["project_id"])


@pytest.fixture(scope="module")
def stranger(server):
    op = server.operator
    c = admin_tenant(server.endpoint, op.access_key, op.secret_key, "elb-stranger")
    return client(server.endpoint, c["access_key"], c["secret_key"], c["project_id"])


def new_lb(lbc, name):
    return lbc.create_load_balancer(elb.CreateLoadBalancerRequest(elb.CreateLoadBalancerRequestBody(
        elb.CreateLoadBalancerOption(name=name, availability_zone_list=["az1"])))).loadbalancer


def expect(call, status, code):
    with pytest.raises(ClientRequestException) as e:
        call()
    assert (e.value.status_code, e.value.error_code) == (status, code), e.value


def test_a_load_balancer_with_members_is_a_session_target(lbc, res):
    lb = lbc.create_load_balancer(elb.CreateLoadBalancerRequest(elb.CreateLoadBalancerRequestBody(
        elb.CreateLoadBalancerOption(name="collectors", availability_zone_list=["az1"],
                                     vip_subnet_cidr_id="sub-1", l4_flavor_id="l4")))).loadbalancer
    assert lb.provisioning_status == "ACTIVE"
    assert lb.availability_zone_list == ["az1"]  # accepted and kept
    pool = lbc.create_pool(elb.CreatePoolRequest(elb.CreatePoolRequestBody(elb.CreatePoolOption(
        loadbalancer_id=lb.id, protocol="UDP", lb_algorithm="SOURCE_IP")))).pool
    assert pool.loadbalancers[0].id == lb.id
    collector = res.port()
    address = collector.fixed_ips[0].ip_address
    m = lbc.create_member(elb.CreateMemberRequest(pool.id, elb.CreateMemberRequestBody(
        elb.CreateMemberOption(address=address, weight=5)))).member
    assert (m.address, m.protocol_port, m.weight, m.operating_status) == (address, 4789, 5, "NO_MONITOR")
    expect(lambda: lbc.create_member(elb.CreateMemberRequest(pool.id, elb.CreateMemberRequestBody(
        elb.CreateMemberOption(address="192.0.2.1")))), 400, "VPC.0101")
    hm = lbc.create_health_monitor(elb.CreateHealthMonitorRequest(elb.CreateHealthMonitorRequestBody(
        elb.CreateHealthMonitorOption(pool_id=pool.id, type="TCP", delay=5, timeout=3, max_retries=3,
                                      monitor_port=7000)))).healthmonitor
    assert (hm.type, hm.delay, hm.monitor_port) == ("TCP", 5, 7000)
    members = lbc.list_members(elb.ListMembersRequest(pool_id=pool.id)).members
    assert [x.operating_status for x in members] == ["INITIAL"]

    s = res.session(target=lb.id, target_type="elb")
    assert (s.traffic_mirror_target_id, s.traffic_mirror_target_type) == (lb.id, "elb")
    expect(lambda: lbc.delete_load_balancer(elb.DeleteLoadBalancerRequest(lb.id)), 409, "VPC.1711")
    res.delete_session(s.id)

    lbc.delete_health_monitor(elb.DeleteHealthMonitorRequest(hm.id))
    lbc.delete_member(elb.DeleteMemberRequest(pool.id, m.id))
    lbc.delete_pool(elb.DeletePoolRequest(pool.id))
    lbc.delete_load_balancer(elb.DeleteLoadBalancerRequest(lb.id))
    expect(lambda: lbc.show_load_balancer(elb.ShowLoadBalancerRequest(lb.id)), 404, "ELB.8902")


def test_a_member_that_is_a_source_of_a_session_aimed_at_its_load_balancer_is_refused(lbc, res):
    """Its copies would be mirrored again: 400 VPC.1713 (a port both source and target), nothing
    added; the status of the session shows the load balancer has no member (DOWN)."""
    lb = lbc.create_load_balancer(elb.CreateLoadBalancerRequest(elb.CreateLoadBalancerRequestBody(
        elb.CreateLoadBalancerOption(name="sensors", availability_zone_list=["az1"])))).loadbalancer
    pool = lbc.create_pool(elb.CreatePoolRequest(elb.CreatePoolRequestBody(elb.CreatePoolOption(
        loadbalancer_id=lb.id, protocol="UDP", lb_algorithm="SOURCE_IP")))).pool
    source = res.port()
    s = res.session(sources=[source.id], target=lb.id, target_type="elb")
    raw = res.show_session(s.id).raw_content
    assert b'"status":"DOWN"' in raw.replace(b" ", b""), raw
    expect(lambda: lbc.create_member(elb.CreateMemberRequest(pool.id, elb.CreateMemberRequestBody(
        elb.CreateMemberOption(address=source.fixed_ips[0].ip_address, protocol_port=6081)))), 400, "VPC.1713")
    assert lbc.list_members(elb.ListMembersRequest(pool_id=pool.id)).members == []
    res.delete_session(s.id)
    # Without the session the same address is a member like any other.
    m = lbc.create_member(elb.CreateMemberRequest(pool.id, elb.CreateMemberRequestBody(
        elb.CreateMemberOption(address=source.fixed_ips[0].ip_address, protocol_port=6081)))).member
    lbc.delete_member(elb.DeleteMemberRequest(pool.id, m.id))
    lbc.delete_pool(elb.DeletePoolRequest(pool.id))
    lbc.delete_load_balancer(elb.DeleteLoadBalancerRequest(lb.id))


def test_a_udp_listener_is_kept_and_its_pool_is_its_default_pool(lbc, reader, stranger):
    lb = new_lb(lbc, "with-listener")
    create = lambda **kw: lbc.create_listener(elb.CreateListenerRequest(elb.CreateListenerRequestBody(
        elb.CreateListenerOption(loadbalancer_id=lb.id, **kw))))
    expect(lambda: create(protocol="TCP", protocol_port=4789), 400, "VPC.0101")
    expect(lambda: create(protocol="UDP", protocol_port=0), 400, "VPC.0101")
    ln = create(protocol="UDP", protocol_port=4789, name="vxlan", keepalive_timeout=300).listener
    assert (ln.protocol, ln.protocol_port, ln.name, ln.keepalive_timeout) == ("UDP", 4789, "vxlan", 300)
    assert ln.loadbalancers[0].id == lb.id and ln.default_pool_id is None
    expect(lambda: create(protocol="UDP", protocol_port=4790), 409, "VPC.1711")
    assert [x.id for x in lbc.show_load_balancer(elb.ShowLoadBalancerRequest(lb.id)).loadbalancer.listeners] \
        == [ln.id]

    pool = lbc.create_pool(elb.CreatePoolRequest(elb.CreatePoolRequestBody(elb.CreatePoolOption(
        listener_id=ln.id, protocol="UDP", lb_algorithm="SOURCE_IP")))).pool
    assert (pool.loadbalancers[0].id, pool.listeners[0].id) == (lb.id, ln.id)
    assert lbc.show_listener(elb.ShowListenerRequest(ln.id)).listener.default_pool_id == pool.id
    assert ln.id in [x.id for x in lbc.list_listeners(elb.ListListenersRequest()).listeners]

    got = lbc.update_listener(elb.UpdateListenerRequest(ln.id, elb.UpdateListenerRequestBody(
        elb.UpdateListenerOption(name="renamed")))).listener
    assert (got.name, got.protocol_port, got.default_pool_id) == ("renamed", 4789, pool.id)
    expect(lambda: lbc.update_listener(elb.UpdateListenerRequest(ln.id, elb.UpdateListenerRequestBody(
        elb.UpdateListenerOption(default_pool_id=lb.id)))), 400, "VPC.0101")

    # A reader reads and is refused writes; another project sees no such listener.
    assert reader.show_listener(elb.ShowListenerRequest(ln.id)).listener.name == "renamed"
    with pytest.raises(ClientRequestException) as e:
        reader.delete_listener(elb.DeleteListenerRequest(ln.id))
    assert e.value.status_code == 403, e.value
    expect(lambda: stranger.show_listener(elb.ShowListenerRequest(ln.id)), 404, "ELB.8902")
    assert ln.id not in [x.id for x in stranger.list_listeners(elb.ListListenersRequest()).listeners]

    lbc.delete_listener(elb.DeleteListenerRequest(ln.id))
    expect(lambda: lbc.show_listener(elb.ShowListenerRequest(ln.id)), 404, "ELB.8902")
    lbc.delete_pool(elb.DeletePoolRequest(pool.id))
    lbc.delete_load_balancer(elb.DeleteLoadBalancerRequest(lb.id))


def test_batch_add_and_batch_delete_take_every_member_or_none(lbc, res, reader, stranger):
    lb = new_lb(lbc, "batch")
    pool = lbc.create_pool(elb.CreatePoolRequest(elb.CreatePoolRequestBody(elb.CreatePoolOption(
        loadbalancer_id=lb.id, protocol="UDP", lb_algorithm="SOURCE_IP")))).pool
    a, b = (res.port().fixed_ips[0].ip_address for _ in range(2))
    add = lambda client, *members: client.batch_create_members(elb.BatchCreateMembersRequest(
        pool.id, elb.BatchCreateMembersRequestBody(list(members))))
    opt = elb.BatchCreateMembersOption
    listed = lambda: lbc.list_members(elb.ListMembersRequest(pool_id=pool.id)).members
    # One bad item refuses the batch: an address nobody in the project owns, a bad weight.
    expect(lambda: add(lbc, opt(address=a), opt(address="192.0.2.1")), 400, "VPC.0101")
    expect(lambda: add(lbc, opt(address=a), opt(address=b, weight=101)), 400, "VPC.0101")
    expect(lambda: add(lbc, opt(address=a), opt(address=a)), 409, "VPC.1711")
    assert listed() == []
    with pytest.raises(ClientRequestException) as e:
        add(reader, opt(address=a))
    assert e.value.status_code == 403, e.value
    expect(lambda: add(stranger, opt(address=a)), 404, "ELB.8902")
    assert listed() == []

    got = add(lbc, opt(address=a, weight=3), opt(address=b, protocol_port=6081)).members
    assert [(m.address, m.protocol_port, m.weight) for m in got] == [(a, 4789, 3), (b, 6081, 1)]
    assert len(listed()) == 2

    delete = lambda *members: lbc.batch_delete_members(elb.BatchDeleteMembersRequest(
        pool.id, elb.BatchDeleteMembersRequestBody(list(members))))
    dopt = elb.BatchDeleteMembersOption
    expect(lambda: delete(dopt(id=got[0].id), dopt(address="192.0.2.1")), 404, "ELB.8902")
    assert len(listed()) == 2
    gone = delete(dopt(id=got[0].id), dopt(address=b, protocol_port=6081)).members
    assert [(x.id, x.ret_status) for x in gone] == [(got[0].id, "successful"), (got[1].id, "successful")]
    assert listed() == []
    lbc.delete_pool(elb.DeletePoolRequest(pool.id))
    lbc.delete_load_balancer(elb.DeleteLoadBalancerRequest(lb.id))


def test_lists_page_and_filter_through_the_sdk(lbc, res, stranger):
    """limit, marker, page_reverse and filters as huaweicloudsdkelb's List* requests send them
    (lists as repeated keys), page_info read by the SDK's model."""
    lbs = [new_lb(lbc, f"paged-{i}") for i in range(3)]
    ids = [lb.id for lb in lbs]
    list_lbs = lambda **kw: lbc.list_load_balancers(elb.ListLoadBalancersRequest(**kw))
    first = list_lbs(limit=2, name=[f"paged-{i}" for i in range(3)])
    assert [x.id for x in first.loadbalancers] == ids[:2]
    assert (first.page_info.current_count, first.page_info.next_marker) == (2, ids[1])
    rest = list_lbs(limit=2, marker=first.page_info.next_marker, name=["paged-0", "paged-1", "paged-2"])
    assert [x.id for x in rest.loadbalancers] == ids[2:]
    assert rest.page_info.next_marker is None
    back = list_lbs(limit=1, marker=ids[2], page_reverse=True, id=ids)
    assert [x.id for x in back.loadbalancers] == [ids[1]]
    assert list_lbs(id=[ids[0]], name=["paged-1"]).loadbalancers == []
    expect(lambda: list_lbs(limit=2001), 400, "VPC.0101")
    expect(lambda: stranger.list_load_balancers(elb.ListLoadBalancersRequest(marker=ids[0])),
           400, "VPC.0101")

    pool = lbc.create_pool(elb.CreatePoolRequest(elb.CreatePoolRequestBody(elb.CreatePoolOption(
        loadbalancer_id=ids[0], protocol="UDP", lb_algorithm="SOURCE_IP")))).pool
    addresses = [res.port().fixed_ips[0].ip_address for _ in range(3)]
    members = [lbc.create_member(elb.CreateMemberRequest(pool.id, elb.CreateMemberRequestBody(
        elb.CreateMemberOption(address=a)))).member for a in addresses]
    list_members = lambda **kw: lbc.list_members(elb.ListMembersRequest(pool_id=pool.id, **kw))
    page = list_members(limit=2)
    assert [m.id for m in page.members] == [m.id for m in members[:2]]
    assert page.page_info.next_marker == members[1].id
    assert [m.id for m in list_members(marker=members[1].id).members] == [members[2].id]
    assert [m.address for m in list_members(address=[addresses[2], addresses[0]]).members] == \
        [addresses[0], addresses[2]]
    got = list_lbs(member_address=[addresses[1]]).loadbalancers
    assert [x.id for x in got] == [ids[0]]
    expect(lambda: list_members(marker=ids[0]), 400, "VPC.0101")

    for m in members:
        lbc.delete_member(elb.DeleteMemberRequest(pool.id, m.id))
    lbc.delete_pool(elb.DeletePoolRequest(pool.id))
    for i in ids:
        lbc.delete_load_balancer(elb.DeleteLoadBalancerRequest(i))
