"""Business rules hold under concurrent requests (issue 3, point 6: "enforced in one service
layer"; DESIGN.md: "business rules hold under concurrency"). Each race is bounded: a handful of
threads, one request each."""

from concurrent.futures import ThreadPoolExecutor

from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException

from hwsupport import raw


def race(n, fn):
    """Run fn(i) for i in range(n) at once; return (successes, errors)."""
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(fn, i) for i in range(n)]
    ok, errors = [], []
    for f in futures:
        try:
            ok.append(f.result())
        except ClientRequestException as e:
            errors.append((e.status_code, e.error_code))
    return ok, errors


def test_same_session_priority_at_once(res):
    prio = res.priorities.next()
    opts = [res.session_option(priority=prio) for _ in range(6)]
    ok, errors = race(6, lambda i: res.create_session_from(opts[i]))
    assert len(ok) == 1, f"{len(ok)} sessions got priority {prio}"
    assert set(errors) == {(409, "VPC.1710")}
    assert [s.id for s in res.list_sessions(priority=str(prio)).traffic_mirror_sessions] == \
        [ok[0].traffic_mirror_session.id]


def test_sessions_per_source_at_once(res):
    shared = res.port().id
    flt, tgt = res.filter().id, res.port().id
    opts = [res.session_option(sources=[shared], filter_id=flt, target=tgt) for _ in range(6)]
    ok, errors = race(6, lambda i: res.create_session_from(opts[i]))
    assert len(ok) == 3, f"{len(ok)} sessions share one source; the quota is 3"
    assert set(errors) == {(409, "VPC.0114")}
    assert len(res.list_sessions(traffic_mirror_filter_id=flt).traffic_mirror_sessions) == 3


def test_sources_per_session_at_once(res):
    s = res.session(sources=res.port_ids(8))
    extra = res.port_ids(6)
    ok, errors = race(6, lambda i: res.add_sources(s.id, [extra[i]]))
    assert len(ok) == 2, f"{len(ok)} add-sources succeeded on a session with room for 2"
    assert set(errors) == {(409, "VPC.0114")}
    assert len(raw(res.show_session(s.id))["traffic_mirror_session"]["traffic_mirror_sources"]) == 10


def test_rules_per_direction_at_once(res):
    f = res.filter().id
    for p in range(1, 8):
        res.rule(f, priority=p)
    ok, errors = race(6, lambda i: res.create_rule(f, priority=100 + i))
    assert len(ok) == 3, f"{len(ok)} rules created with room for 3"
    assert set(errors) == {(409, "VPC.0114")}
    assert len(res.list_rules(traffic_mirror_filter_id=f).traffic_mirror_filter_rules) == 10


def test_same_rule_priority_at_once(res):
    f = res.filter().id
    ok, errors = race(6, lambda i: res.create_rule(f, priority=42, direction="egress"))
    assert len(ok) == 1
    assert set(errors) == {(409, "VPC.1710")}


def test_add_same_source_at_once(res):
    s = res.session()
    p = res.port().id
    ok, errors = race(5, lambda i: res.add_sources(s.id, [p]))
    assert len(ok) == 1
    assert set(errors) == {(409, "VPC.1712")}
    srcs = raw(res.show_session(s.id))["traffic_mirror_session"]["traffic_mirror_sources"]
    assert srcs.count(p) == 1
