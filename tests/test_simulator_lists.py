"""The simulator's lists: conditions as real code writes them, Link paging, forward-only paging."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from cw_glbatch.testing import FakeConnectWise

BATCHES = "/finance/accounting/batches"
INVOICES = "/finance/accounting/unpostedinvoices"
IDENTIFIERS = ["F-3", "F-30", "f-31", "XF-3", "F.3", "G-1", "F-3 closed"]


@pytest.fixture(scope="module")
def raw():
    """A simulator holding one batch per identifier above (ids 1..7), and a client on it."""
    fake = FakeConnectWise()
    ids = fake.populate(len(IDENTIFIERS) + 12, seed=8)
    with fake.client() as client:
        for identifier, entry in zip(IDENTIFIERS, ids, strict=False):
            client.create_batch(identifier, [entry])
        headers, root = dict(client._headers), client.api_root
    with httpx.Client(transport=fake.transport(), base_url=root, headers=headers) as http:
        yield http


def identifiers(raw, conditions: str) -> list[str]:
    response = raw.get(BATCHES, params={"conditions": conditions})
    assert response.status_code == 200, response.text
    return [b["batchIdentifier"] for b in response.json()]


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ("batchIdentifier = 'F-3'", ["F-3"]),
        ('batchIdentifier = "F-3"', ["F-3"]),
        ("BATCHIDENTIFIER = 'F-3'", ["F-3"]),
        ("batchidentifier in ('F-3', \"G-1\")", ["F-3", "G-1"]),
        ("batchIdentifier like 'F-3*'", ["F-3", "F-30", "f-31", "F-3 closed"]),
        ("batchIdentifier like 'F?3'", []),
        ("batchIdentifier like 'F.3'", ["F.3"]),
        ("batchIdentifier not like 'F*'", ["XF-3", "G-1"]),
        ("batchIdentifier contains 'closed'", ["F-3 closed"]),
        ("batchIdentifier not contains '-'", ["F.3"]),
        ("id > 5 and closedFlag = False", ["G-1", "F-3 closed"]),
        ("closedFlag = True or id = 1", ["F-3"]),
        ("closedFlag = null", []),
        ("_info/dateEntered > [2000-01-01T00:00:00Z] and id <= 2", ["F-3", "F-30"]),
        ("_INFO/DATEENTERED < [2000-01-01T00:00:00Z]", []),
    ],
)
def test_conditions_as_real_code_writes_them(raw, conditions, expected):
    """Both quote styles, any case of field names, like with *, not like/contains, dates."""
    assert identifiers(raw, conditions) == expected


@pytest.mark.parametrize(
    "conditions", ["nosuch = 1", "batchIdentifier = 'x' or Identifier = 'x'", "_info/x = 1"]
)
def test_unknown_fields_are_refused(raw, conditions):
    """A field the resource lacks is refused with 400, not matched against nothing."""
    response = raw.get(BATCHES, params={"conditions": conditions})
    assert response.status_code == 400
    assert response.json()["code"] == "InvalidObject"
    assert "unknown field" in response.json()["message"]


@pytest.mark.parametrize("conditions", ["id >", "batchIdentifier not = 'x'", "id = [yesterday]"])
def test_malformed_conditions_are_refused(raw, conditions):
    """Conditions that do not parse answer 400."""
    assert raw.get(BATCHES, params={"conditions": conditions}).status_code == 400


def test_conditions_apply_to_every_list(raw):
    """Unposted lists take conditions too, nested fields included; unknown fields are 400."""
    every = raw.get(INVOICES).json()
    assert every
    located = raw.get(INVOICES, params={"conditions": "locationId = 2"}).json()
    assert [r["id"] for r in located] == [r["id"] for r in every if r["locationId"] == 2]
    named = raw.get(INVOICES, params={"conditions": "company/name = 'Contoso Ltd'"}).json()
    assert named == every
    assert raw.get(INVOICES, params={"conditions": "company/nope = 1"}).status_code == 400
    assert raw.get(BATCHES + "/1/entries", params={"conditions": "id > 0"}).json()
    assert raw.get(INVOICES + "/count", params={"conditions": "id < 0"}).json() == {"count": 0}


def links(response: httpx.Response) -> dict[str, str]:
    return {
        rel: url
        for url, rel in re.findall(r'<([^>]*)>; rel="(\w+)"', response.headers.get("link", ""))
    }


def test_link_header_names_first_prev_next_last_with_the_page_last(raw):
    """Page 2 of 3 links first, prev, next and last; each link ends with its page parameter."""
    response = raw.get(BATCHES, params={"page": 2, "pageSize": 3, "orderBy": "id asc"})
    found = links(response)
    assert list(found) == ["first", "prev", "next", "last"]
    pages = {rel: dict(parse_qsl(urlsplit(url).query)) for rel, url in found.items()}
    assert {rel: query["page"] for rel, query in pages.items()} == {
        "first": "1",
        "prev": "1",
        "next": "3",
        "last": "3",
    }
    assert all(url.endswith(f"page={pages[rel]['page']}") for rel, url in found.items())
    assert all(q["pageSize"] == "3" and q["orderBy"] == "id asc" for q in pages.values())


def test_last_page_links_no_next(raw):
    """The last page links first, prev and last, and no next."""
    assert list(links(raw.get(BATCHES, params={"page": 3, "pageSize": 3}))) == [
        "first",
        "prev",
        "last",
    ]
    assert list(links(raw.get(BATCHES, params={"pageSize": 50}))) == ["first", "last"]


def test_forward_only_paging_follows_page_id(raw):
    """With pagination-type: forward-only, next links carry pageId (last), no page numbers."""
    headers = {"pagination-type": "forward-only"}
    seen, url = [], BATCHES + "?pageSize=3"
    while url:
        response = raw.get(url, headers=headers)
        assert response.status_code == 200
        seen += [b["id"] for b in response.json()]
        url = links(response).get("next", "")
        assert set(links(response)) <= {"next"}
        assert not url or re.search(r"[?&]pageId=\d+$", url)
    assert seen == list(range(1, len(IDENTIFIERS) + 1))


def test_forward_only_paging_refuses_order_by(raw):
    """Forward-only paging takes no orderBy."""
    response = raw.get(
        BATCHES, params={"orderBy": "id desc"}, headers={"pagination-type": "forward-only"}
    )
    assert response.status_code == 400


def test_company_info_answers_strings_as_connectwise_does(raw):
    """Company info carries the codebase, and its flags as strings ("IsCloud": "False")."""
    info = raw.get("https://x/login/companyinfo/ACME").json()
    assert (info["Codebase"], info["IsCloud"], info["VersionCode"]) == (
        "v2025_1/",
        "False",
        "v2025.1",
    )
    assert all(isinstance(value, str) for value in info.values())


def test_fields_and_order_by_in_any_case_work_with_forward_only_paging(raw):
    """fields cuts each record after paging, so forward-only pages still follow ids."""
    headers = {"pagination-type": "forward-only"}
    first = raw.get(BATCHES, params={"pageSize": 2, "fields": "batchIdentifier"}, headers=headers)
    assert first.json() == [{"batchIdentifier": "F-3"}, {"batchIdentifier": "F-30"}]
    assert links(first)["next"].endswith("pageId=2")
    ordered = raw.get(BATCHES, params={"orderBy": "ID desc", "fields": "ID", "pageSize": 2})
    assert ordered.json() == [{"id": 7}, {"id": 6}]


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ('batchIdentifier = "a\\"b"', None),  # no escape: the string ends at the second quote
        ("batchIdentifier = 'F-3\\'", []),  # a whole string: F-3 and a backslash
        ("batchIdentifier contains '\\'", []),  # a backslash is itself
        ('batchIdentifier = "F\'3"', []),  # the other quote inside a string is a character
    ],
)
def test_strings_have_no_escapes(raw, conditions, expected):
    """ConnectWise documents no escape in conditions, so the simulator reads none."""
    response = raw.get(BATCHES, params={"conditions": conditions})
    if expected is None:
        assert response.status_code == 400
    else:
        assert [b["batchIdentifier"] for b in response.json()] == expected
