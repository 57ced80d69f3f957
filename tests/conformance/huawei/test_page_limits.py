"""The default and maximum page size, 2000 (issue 3, point 5; reference §6)."""

from concurrent.futures import ThreadPoolExecutor

from hwsupport import raw, short


def test_default_and_maximum_page_is_2000(res):
    name = f"bulk-{short()}"
    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(lambda _: res.filter(name=name).id, range(2001)))
    # Creation order is what the list follows; threads may interleave, so take the server's view.
    order = [f["id"] for f in raw(res.list_filters(name=name, limit=2000))["traffic_mirror_filters"]]
    order += [f["id"] for f in raw(res.list_filters(name=name, marker=order[-1]))["traffic_mirror_filters"]]
    assert sorted(order) == sorted(ids) and len(set(order)) == 2001

    body = raw(res.list_filters(name=name))
    assert len(body["traffic_mirror_filters"]) == 2000, "default limit is 2000"
    assert body["page_info"]["current_count"] == 2000
    assert body["page_info"]["next_marker"] == order[1999]
    rest = raw(res.list_filters(name=name, marker=body["page_info"]["next_marker"]))
    assert [f["id"] for f in rest["traffic_mirror_filters"]] == order[2000:]
    assert "next_marker" not in rest["page_info"]

    body = raw(res.list_filters(name=name, limit=2000))
    assert len(body["traffic_mirror_filters"]) == 2000
    assert body["page_info"]["next_marker"] == order[1999]
