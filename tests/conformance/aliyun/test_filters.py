"""Traffic mirror filters and their rules through the Alibaba SDK."""

from alibabacloud_vpc20160428 import models as vpc

from alisupport import REGION, expect_error, token


def ingress(**kw):
    return vpc.CreateTrafficMirrorFilterRequestIngressRules(**kw)


def egress(**kw):
    return vpc.CreateTrafficMirrorFilterRequestEgressRules(**kw)


def test_filter_with_rules(ares, ali):
    fid = ares.filter(
        traffic_mirror_filter_name="web", traffic_mirror_filter_description="http",
        ingress_rules=[
            ingress(action="accept", protocol="TCP", priority=1, source_cidr_block="10.0.0.0/8",
                    destination_cidr_block="0.0.0.0/0", destination_port_range="80/443",
                    source_port_range="-1/-1"),
            ingress(action="drop", protocol="ALL", priority=2, source_cidr_block="0.0.0.0/0",
                    destination_cidr_block="0.0.0.0/0"),
        ],
        egress_rules=[egress(action="accept", protocol="ICMP", priority=1, ip_version="IPv6",
                             source_cidr_block="::/0", destination_cidr_block="fd00::/8")])
    assert fid.startswith("tmf-")
    f = ares.show_filter(fid)
    assert (f.traffic_mirror_filter_name, f.traffic_mirror_filter_description) == ("web", "http")
    assert f.traffic_mirror_filter_status == "Created"
    assert f.resource_group_id
    r1, r2 = f.ingress_rules
    assert r1.traffic_mirror_filter_rule_id.startswith("tmr-")
    assert (r1.action, r1.protocol, r1.priority) == ("accept", "TCP", 1)
    assert (r1.destination_port_range, r1.source_port_range) == ("80/443", "-1/-1")
    assert (r1.source_cidr_block, r1.traffic_direction, r1.ip_version) == ("10.0.0.0/8", "ingress", "IPv4")
    assert r1.traffic_mirror_filter_rule_status == "Created"
    assert r1.traffic_mirror_filter_id == fid
    assert (r2.action, r2.protocol) == ("drop", "ALL")
    (e1,) = f.egress_rules
    assert (e1.protocol, e1.ip_version, e1.destination_cidr_block) == ("ICMP", "IPv6", "fd00::/8")

    ali.update_traffic_mirror_filter_attribute(vpc.UpdateTrafficMirrorFilterAttributeRequest(
        region_id=REGION, traffic_mirror_filter_id=fid, traffic_mirror_filter_name="web2",
        traffic_mirror_filter_description="d2"))
    f = ares.show_filter(fid)
    assert (f.traffic_mirror_filter_name, f.traffic_mirror_filter_description) == ("web2", "d2")
    assert ares.list_filters(traffic_mirror_filter_name="web2").total_count == "1"

    ares.delete_filter(fid)
    assert ares.list_filters(traffic_mirror_filter_ids=[fid]).total_count == "0"
    expect_error(lambda: ares.delete_filter(fid), "ResourceNotFound.TrafficMirrorFilter")


def test_rules(ares, ali):
    fid = ares.filter()
    resp = ali.create_traffic_mirror_filter_rules(vpc.CreateTrafficMirrorFilterRulesRequest(
        region_id=REGION, traffic_mirror_filter_id=fid,
        ingress_rules=[vpc.CreateTrafficMirrorFilterRulesRequestIngressRules(
            action="accept", protocol="UDP", priority=3, source_cidr_block="0.0.0.0/0",
            destination_cidr_block="0.0.0.0/0", destination_port_range="53/53", source_port_range="-1/-1")],
        egress_rules=[vpc.CreateTrafficMirrorFilterRulesRequestEgressRules(
            action="drop", protocol="TCP", priority=4, source_cidr_block="0.0.0.0/0",
            destination_cidr_block="0.0.0.0/0")]))
    (i,) = resp.body.ingress_rules
    (e,) = resp.body.egress_rules
    assert i.instance_id.startswith("tmr-") and e.instance_id.startswith("tmr-")
    ali.update_traffic_mirror_filter_rule_attribute(vpc.UpdateTrafficMirrorFilterRuleAttributeRequest(
        region_id=REGION, traffic_mirror_filter_rule_id=i.instance_id, priority=9, protocol="ALL",
        rule_action="drop", source_cidr_block="10.0.0.0/8", destination_cidr_block="0.0.0.0/0"))
    f = ares.show_filter(fid)
    (ri,) = f.ingress_rules
    assert (ri.priority, ri.protocol, ri.action, ri.source_cidr_block) == (9, "ALL", "drop", "10.0.0.0/8")
    assert ri.destination_port_range == "-1/-1"
    expect_error(lambda: ali.create_traffic_mirror_filter_rules(vpc.CreateTrafficMirrorFilterRulesRequest(
        region_id=REGION, traffic_mirror_filter_id=fid,
        egress_rules=[vpc.CreateTrafficMirrorFilterRulesRequestEgressRules(
            action="accept", protocol="TCP", priority=4)])), "IllegalParam.RulePriority")
    expect_error(lambda: ali.create_traffic_mirror_filter_rules(vpc.CreateTrafficMirrorFilterRulesRequest(
        region_id=REGION, traffic_mirror_filter_id=fid,
        egress_rules=[vpc.CreateTrafficMirrorFilterRulesRequestEgressRules(
            action="accept", protocol="ICMP", priority=5, destination_port_range="1/2")])),
        "IllegalParam.DestinationPortRange")
    expect_error(lambda: ali.create_traffic_mirror_filter_rules(vpc.CreateTrafficMirrorFilterRulesRequest(
        region_id=REGION, traffic_mirror_filter_id=fid,
        egress_rules=[vpc.CreateTrafficMirrorFilterRulesRequestEgressRules(
            action="accept", protocol="GRE", priority=5)])), "IllegalParam.Protocol")
    expect_error(lambda: ali.update_traffic_mirror_filter_rule_attribute(
        vpc.UpdateTrafficMirrorFilterRuleAttributeRequest(
            region_id=REGION, traffic_mirror_filter_rule_id="tmr-" + "0" * 32, priority=1)),
        "ResourceNotFound.TrafficMirrorRule")
    ali.delete_traffic_mirror_filter_rules(vpc.DeleteTrafficMirrorFilterRulesRequest(
        region_id=REGION, traffic_mirror_filter_id=fid, traffic_mirror_filter_rule_ids=[i.instance_id]))
    f = ares.show_filter(fid)
    assert f.ingress_rules == [] and len(f.egress_rules) == 1
    expect_error(lambda: ali.delete_traffic_mirror_filter_rules(vpc.DeleteTrafficMirrorFilterRulesRequest(
        region_id=REGION, traffic_mirror_filter_id=fid, traffic_mirror_filter_rule_ids=[i.instance_id])),
        "ResourceNotFound.TrafficMirrorRule")


def test_rules_per_direction_quota(ares, ali):
    fid = ares.filter(ingress_rules=[ingress(action="accept", protocol="ALL", priority=p)
                                     for p in range(1, 11)])
    expect_error(lambda: ali.create_traffic_mirror_filter_rules(vpc.CreateTrafficMirrorFilterRulesRequest(
        region_id=REGION, traffic_mirror_filter_id=fid,
        ingress_rules=[vpc.CreateTrafficMirrorFilterRulesRequestIngressRules(
            action="accept", protocol="ALL", priority=11)])), "QuotaExceeded.RuleNumPerFilter")


def test_create_is_atomic(ares):
    # The second rule is refused, so neither the filter nor the first rule exist afterwards.
    before = ares.list_filters().total_count
    expect_error(lambda: ares.filter(ingress_rules=[ingress(action="accept", protocol="TCP", priority=1),
                                                    ingress(action="accept", protocol="TCP", priority=1)]),
                 "IllegalParam.RulePriority")
    assert ares.list_filters().total_count == before


def test_client_token_and_dry_run(ares):
    tok = token()
    a = ares.filter(traffic_mirror_filter_name="same", client_token=tok)
    b = ares.filter(traffic_mirror_filter_name="same", client_token=tok)
    assert a == b
    expect_error(lambda: ares.filter(traffic_mirror_filter_name="other", client_token=tok),
                 "IdempotentParameterMismatch")
    before = ares.list_filters().total_count
    expect_error(lambda: ares.create_filter(dry_run=True), "DryRunOperation")
    expect_error(lambda: ares.create_filter(dry_run=True, traffic_mirror_filter_name="http://x"),
                 "IllegalParam.TrafficMirrorFilterName")
    assert ares.list_filters().total_count == before
    expect_error(lambda: ares.delete_filter(a, dry_run=True), "DryRunOperation")
    ares.show_filter(a)
