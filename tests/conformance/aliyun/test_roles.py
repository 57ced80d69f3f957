"""Roles and projects as the Alibaba SDK sees them (docs/security.md): a reader key of the suite's
project reads and is refused every write with 403 Forbidden.RAM, dry runs included; a member of
another project finds the suite's resources exactly as ids nobody holds. Keys are made through
the admin API by the operator."""

import pytest
from alibabacloud_vpc20160428 import models as vpc

import alisupport
import hwsupport
from alisupport import REGION, expect_error


def unknown_like(alibaba_id):
    """An id of the same kind (`tms-`, `tmf-`) that nobody holds."""
    return f"{alibaba_id.split('-', 1)[0]}-{hwsupport.uid().replace('-', '')}"


@pytest.fixture(scope="module")
def reader(server):
    op = server.operator
    return hwsupport.admin_credential(server.endpoint, op.access_key, op.secret_key, server.project_id, "reader")


def test_a_reader_reads_and_writes_nothing(server, reader, ares, scheme):
    fid = ares.filter(traffic_mirror_filter_name="kept")
    sid = ares.session(filter_id=fid)
    ro = alisupport.make_client(server.endpoint, reader["access_key"], reader["secret_key"], scheme)
    before = ares.show_session(sid).to_map()
    got = ro.list_traffic_mirror_sessions(vpc.ListTrafficMirrorSessionsRequest(
        region_id=REGION, traffic_mirror_session_ids=[sid])).body.traffic_mirror_sessions
    assert [s.to_map() for s in got] == [before]
    assert ro.get_traffic_mirror_service_status(vpc.GetTrafficMirrorServiceStatusRequest(region_id=REGION)).body.enabled
    for dry_run in (False, True):
        for call in (
            lambda: ro.create_traffic_mirror_filter(vpc.CreateTrafficMirrorFilterRequest(
                region_id=REGION, traffic_mirror_filter_name="intruder", dry_run=dry_run)),
            lambda: ro.update_traffic_mirror_session_attribute(vpc.UpdateTrafficMirrorSessionAttributeRequest(
                region_id=REGION, traffic_mirror_session_id=sid, traffic_mirror_session_name="hijacked",
                dry_run=dry_run)),
            lambda: ro.delete_traffic_mirror_session(vpc.DeleteTrafficMirrorSessionRequest(
                region_id=REGION, traffic_mirror_session_id=sid, dry_run=dry_run)),
            lambda: ro.delete_traffic_mirror_filter(vpc.DeleteTrafficMirrorFilterRequest(
                region_id=REGION, traffic_mirror_filter_id=fid, dry_run=dry_run)),
        ):
            e = expect_error(call, "Forbidden.RAM", 403)
            assert "reader" in e.data["Message"]
    assert ares.show_session(sid).to_map() == before
    assert [f.traffic_mirror_filter_id for f in ares.list_filters(
        traffic_mirror_filter_name="intruder").traffic_mirror_filters] == []


def test_another_projects_resources_are_unknown_ids(server, ares, scheme):
    fid = ares.filter(traffic_mirror_filter_name="mine")
    sid = ares.session(filter_id=fid)
    before = ares.show_session(sid).to_map()
    op = server.operator
    other = hwsupport.admin_tenant(server.endpoint, op.access_key, op.secret_key, f"other-{hwsupport.short()}")
    them = alisupport.make_client(server.endpoint, other["access_key"], other["secret_key"], scheme)
    alisupport.ensure_open(them)
    for theirs, kind in ((sid, "TrafficMirrorSession"), (fid, "TrafficMirrorFilter")):
        nobody = unknown_like(theirs)
        answers = []
        for i in (theirs, nobody):
            if kind == "TrafficMirrorSession":
                call = lambda i=i: them.delete_traffic_mirror_session(vpc.DeleteTrafficMirrorSessionRequest(  # noqa: E731
                    region_id=REGION, traffic_mirror_session_id=i))
            else:
                call = lambda i=i: them.delete_traffic_mirror_filter(vpc.DeleteTrafficMirrorFilterRequest(  # noqa: E731
                    region_id=REGION, traffic_mirror_filter_id=i))
            e = expect_error(call, f"ResourceNotFound.{kind}")
            answers.append(e.data["Message"].replace(i, "<id>"))
        assert answers[0] == answers[1], answers
    listed = them.list_traffic_mirror_sessions(vpc.ListTrafficMirrorSessionsRequest(
        region_id=REGION, traffic_mirror_session_ids=[sid])).body
    assert listed.total_count == "0"
    assert ares.show_session(sid).to_map() == before
