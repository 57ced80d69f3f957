"""The ELB v3 subset through huaweicloudsdkelb (v3 ElbClient), as users stand up a load balancer
to mirror to: load balancer, UDP pool, members, TCP health monitor, and a session with an `elb`
target through huaweicloudsdkvpc (docs/load-balancers.md)."""

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
import huaweicloudsdkelb.v3 as elb

import hwsupport


@pytest.fixture(scope="module")
def lbc(server):
    cfg = hwsupport.http_config(server.endpoint)
    creds = BasicCredentials(server.access_key, server.secret_key, server.project_id)
    return (elb.ElbClient.new_builder().with_http_config(cfg).with_credentials(creds)
            .with_endpoints([server.endpoint]).build())


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
