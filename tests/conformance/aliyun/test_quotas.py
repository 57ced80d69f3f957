"""Per-project quotas through Alibaba's SDK (docs/aliyun.md): an account creates filters and
sessions up to its quota, the next create raises QuotaExceeded.FilterNum or
QuotaExceeded.SessionNum (HTTP 400) and changes nothing, and a delete frees a slot. On a server
of their own (`quota_server`), whose account may hold 2 sessions and 2 filters."""

import pytest

import alisupport
import hwsupport
from alisupport import expect_error


@pytest.fixture
def qali(quota_server, scheme):
    s = quota_server
    client = alisupport.make_client(s.endpoint, s.access_key, s.secret_key, scheme)
    alisupport.ensure_open(client)
    v3, v2 = hwsupport.make_clients(s.endpoint, s.access_key, s.secret_key, s.project_id)
    hres = hwsupport.Resources(v3, v2, hwsupport.PriorityCounter(v3))
    a = alisupport.Ali(client, hres, hres.priorities)
    yield a
    a.cleanup()
    hres.cleanup()


def test_filters_stop_at_the_quota(qali, quotas):
    first = qali.filter()
    for _ in range(quotas["filters"] - 1):
        qali.filter()
    e = expect_error(lambda: qali.create_filter(), "QuotaExceeded.FilterNum")
    assert f"at most {quotas['filters']} traffic mirror filters per project" in e.data["Message"]
    # A DryRun checks the quota too.
    expect_error(lambda: qali.create_filter(dry_run=True), "QuotaExceeded.FilterNum")
    assert qali.list_filters().total_count == str(quotas["filters"])
    qali.delete_filter(first)
    qali.filter()


def test_sessions_stop_at_the_quota(qali, quotas):
    flt, source, target = qali.filter(), qali.eni(), qali.eni()

    def create():
        return qali.session(filter_id=flt, sources=[source], target=target)

    first = create()
    for _ in range(quotas["sessions"] - 1):
        create()
    e = expect_error(create, "QuotaExceeded.SessionNum")
    assert f"at most {quotas['sessions']} traffic mirror sessions per project" in e.data["Message"]
    assert qali.list_sessions().total_count == str(quotas["sessions"])
    qali.delete_session(first)
    create()
