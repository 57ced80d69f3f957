"""OpenTrafficMirrorService, GetTrafficMirrorServiceStatus and OptInRequired.TrafficMirror."""

import pytest
from alibabacloud_vpc20160428 import models as vpc

import alisupport
import hwsupport
from alisupport import REGION, expect_error


def test_status_and_second_open(ali):
    body = ali.get_traffic_mirror_service_status(vpc.GetTrafficMirrorServiceStatusRequest(region_id=REGION)).body
    assert body.enabled is True
    # No RegionId at all (Terraform sends none).
    assert ali.get_traffic_mirror_service_status(vpc.GetTrafficMirrorServiceStatusRequest()).body.enabled is True
    expect_error(lambda: ali.open_traffic_mirror_service(vpc.OpenTrafficMirrorServiceRequest(region_id=REGION)),
                 "ORDER.OPEND")


@pytest.fixture
def fresh_tenant(server):
    """Another project of the suite's server with a member key, made through the admin API by
    the operator: the service is opened per project (Alibaba: per account), so not yet here."""
    op = server.operator
    return hwsupport.admin_tenant(server.endpoint, op.access_key, op.secret_key, f"fresh-{hwsupport.short()}")


def test_opt_in_required_before_open(server, fresh_tenant, ali, scheme):
    c = alisupport.make_client(server.endpoint, fresh_tenant["access_key"], fresh_tenant["secret_key"], scheme)
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
