"""MaxResults and NextToken on both list operations."""

from alisupport import expect_error


def test_sessions_pages(ares):
    flt = ares.filter()
    made = [ares.session(filter_id=flt) for _ in range(5)]
    seen, token, pages = [], None, 0
    while True:
        body = ares.list_sessions(traffic_mirror_filter_id=flt, max_results=2, next_token=token)
        assert body.total_count == "5"
        assert len(body.traffic_mirror_sessions) <= 2
        seen += [s.traffic_mirror_session_id for s in body.traffic_mirror_sessions]
        pages += 1
        token = body.next_token
        if not token:
            break
    assert seen == made and pages == 3


def test_filters_pages(ares):
    name = "page-" + ares.eni()[-8:]
    made = [ares.filter(traffic_mirror_filter_name=name) for _ in range(3)]
    first = ares.list_filters(traffic_mirror_filter_name=name, max_results=2)
    assert (first.total_count, first.count, first.max_results) == ("3", 2, 2)
    second = ares.list_filters(traffic_mirror_filter_name=name, max_results=2, next_token=first.next_token)
    assert (second.count, second.next_token) == (1, "")
    assert [f.traffic_mirror_filter_id for f in first.traffic_mirror_filters + second.traffic_mirror_filters] == made
    default = ares.list_filters(traffic_mirror_filter_name=name)
    assert default.max_results == 10


def test_bad_page_parameters(ares):
    expect_error(lambda: ares.list_filters(max_results=0), "IllegalParam.MaxResults")
    expect_error(lambda: ares.list_sessions(max_results=101), "IllegalParam.MaxResults")
    expect_error(lambda: ares.list_sessions(next_token="not-a-token"), "IllegalParam.NextToken")
