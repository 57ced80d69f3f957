"""limit/marker pagination of the three v3 list operations (reference §3.4, §6)."""

import pytest

from hwsupport import expect_error, raw, short, uid


class Collection:
    """One of the three lists: how to make N isolated items and how to list them."""

    def __init__(self, res, kind):
        self.res, self.kind = res, kind
        self.key = {"sessions": "traffic_mirror_sessions", "filters": "traffic_mirror_filters",
                    "rules": "traffic_mirror_filter_rules"}[kind]
        self.isolate = {}

    def make(self, n):
        if self.kind == "filters":
            name = f"page-{short()}"  # names need not be unique; this one isolates the set
            self.isolate = {"name": name}
            return [self.res.filter(name=name).id for _ in range(n)]
        flt = self.res.filter().id
        self.isolate = {"traffic_mirror_filter_id": flt}
        if self.kind == "rules":
            return [self.res.rule(flt, priority=p + 1).id for p in range(n)]
        target = self.res.port().id
        return [self.res.session(filter_id=flt, target=target).id for _ in range(n)]

    def list(self, **query):
        fn = {"sessions": self.res.list_sessions, "filters": self.res.list_filters,
              "rules": self.res.list_rules}[self.kind]
        return fn(**query)


KINDS = ["sessions", "filters", "rules"]


def walk(coll, limit, **query):
    """Follow next_marker as Terraform does; return the pages' raw bodies."""
    pages, marker = [], None
    for _ in range(10_000):
        q = dict(query, limit=limit)
        if marker:
            q["marker"] = marker
        body = raw(coll.list(**q))
        pages.append(body)
        marker = body["page_info"].get("next_marker")
        if not marker:
            return pages
    raise AssertionError("pagination does not end")


def check_page(body, key):
    items = body[key]
    info = body["page_info"]
    assert type(info["current_count"]) is int
    assert info["current_count"] == len(items)
    if items:
        assert info["previous_marker"] == items[0]["id"], "previous_marker is the first id of the page"
        if "next_marker" in info:
            assert info["next_marker"] == items[-1]["id"], "next_marker is the last id of the page"


@pytest.mark.parametrize("kind", KINDS)
def test_pages_of_two_over_five_items(res, kind):
    coll = Collection(res, kind)
    ids = coll.make(5)
    pages = walk(coll, 2, **coll.isolate)
    assert [len(p[coll.key]) for p in pages] == [2, 2, 1]
    for p in pages:
        check_page(p, coll.key)
    assert [p["page_info"].get("next_marker") for p in pages] == [ids[1], ids[3], None]
    assert "next_marker" not in pages[-1]["page_info"], "next_marker is absent on the last page"
    assert [x["id"] for p in pages for x in p[coll.key]] == ids


@pytest.mark.parametrize("kind", KINDS)
def test_full_last_page_has_no_next_marker(res, kind):
    coll = Collection(res, kind)
    ids = coll.make(6)
    first = raw(coll.list(limit=3, **coll.isolate))
    check_page(first, coll.key)
    assert [x["id"] for x in first[coll.key]] == ids[:3]
    assert first["page_info"]["next_marker"] == ids[2]
    second = raw(coll.list(limit=3, marker=ids[2], **coll.isolate))
    check_page(second, coll.key)
    assert [x["id"] for x in second[coll.key]] == ids[3:]
    assert "next_marker" not in second["page_info"], "no more items: next_marker must be absent"
    # Exactly `limit` items in all: one page, no next marker.
    whole = raw(coll.list(limit=6, **coll.isolate))
    assert [x["id"] for x in whole[coll.key]] == ids
    assert "next_marker" not in whole["page_info"]


@pytest.mark.parametrize("kind", KINDS)
def test_without_limit_everything_on_one_page(res, kind):
    coll = Collection(res, kind)
    ids = coll.make(3)
    body = raw(coll.list(**coll.isolate))
    check_page(body, coll.key)
    assert [x["id"] for x in body[coll.key]] == ids
    assert body["page_info"] == {"previous_marker": ids[0], "current_count": 3}
    # limit=0 means the default (2000).
    body = raw(coll.list(limit=0, **coll.isolate))
    assert [x["id"] for x in body[coll.key]] == ids
    assert "next_marker" not in body["page_info"]


@pytest.mark.parametrize("kind", KINDS)
def test_marker_on_the_last_item_gives_an_empty_page(res, kind):
    coll = Collection(res, kind)
    ids = coll.make(2)
    body = raw(coll.list(marker=ids[-1], **coll.isolate))
    assert body[coll.key] == []
    assert body["page_info"]["current_count"] == 0
    assert "next_marker" not in body["page_info"]
    # Marker and filters combine: after the first item of the filtered set.
    body = raw(coll.list(marker=ids[0], **coll.isolate))
    assert [x["id"] for x in body[coll.key]] == ids[1:]


@pytest.mark.parametrize("kind", KINDS)
def test_no_match_is_an_empty_page(res, kind):
    coll = Collection(res, kind)
    body = raw(coll.list(id=uid()))
    assert body[coll.key] == []
    assert body["page_info"]["current_count"] == 0
    assert "next_marker" not in body["page_info"]


@pytest.mark.parametrize("kind", KINDS)
def test_whole_collection_walk_yields_every_item_once_in_creation_order(res, kind):
    coll = Collection(res, kind)
    mine = coll.make(4)
    unpaged = [x["id"] for x in raw(coll.list())[coll.key]]
    pages = walk(coll, 3)
    for p in pages:
        check_page(p, coll.key)
    walked = [x["id"] for p in pages for x in p[coll.key]]
    assert walked == unpaged
    assert len(set(walked)) == len(walked), "an item appeared twice"
    assert [i for i in walked if i in mine] == mine


@pytest.mark.parametrize("kind", KINDS)
def test_limit_above_2000_is_refused(res, kind):
    coll = Collection(res, kind)
    expect_error(lambda: coll.list(limit=2001), 400, "VPC.0101")
    expect_error(lambda: coll.list(limit=-1), 400, "VPC.0101")


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_marker_is_refused(res, kind):
    coll = Collection(res, kind)
    expect_error(lambda: coll.list(marker=uid()), 400, "VPC.0101")


def test_marker_outside_the_filtered_set(res):
    # The marker names a position in the collection's order; it need not match the filter.
    name = f"mk-{short()}"
    a = res.filter(name=name).id
    b = res.filter().id
    c = res.filter(name=name).id
    body = raw(res.list_filters(name=name, marker=b))
    assert [f["id"] for f in body["traffic_mirror_filters"]] == [c]
    assert body["page_info"]["previous_marker"] == c
    body = raw(res.list_filters(name=name, marker=a, limit=1))
    assert [f["id"] for f in body["traffic_mirror_filters"]] == [c]
    assert "next_marker" not in body["page_info"]
