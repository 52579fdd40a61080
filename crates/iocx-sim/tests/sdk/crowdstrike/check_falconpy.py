#!/usr/bin/env python3
"""Drives CrowdStrike's official Python SDK, falconpy, unchanged against the iocx CrowdStrike
emulator and checks every answer.

Usage: check_falconpy.py BASE_URL CLIENT_ID CLIENT_SECRET OFFSET_WINDOW

The emulator must hold more indicators than OFFSET_WINDOW (its --offset-window), so that offset
paging hits the window and scrolling with `after` has to go past it, and a few alerts. Its
token lifetime should be short (under falconpy's 120 s renew window) so that the SDK's token
refresh is exercised. The script compares what the SDK reads with GET /_sim/state, creates,
updates and deletes indicators, and leaves the store as it found it. It exits 1 with a message
naming the first mismatch, 0 when everything matched.
"""

import json
import os
import sys
import urllib.request

# falconpy routes through HTTP(S)_PROXY when set; the emulator is on loopback.
for _var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_var, None)

import falconpy  # noqa: E402
from falconpy import IOC, Alerts, OAuth2  # noqa: E402

EXPECTED_VERSION = "1.6.6"
PAGE = 100

# Values the check creates; none of them is in the emulator's seed data.
NEW = [
    {"type": "sha256", "value": "ab" * 32, "action": "prevent", "severity": "high"},
    {"type": "md5", "value": "cd" * 16, "action": "detect", "severity": "medium"},
    {"type": "domain", "value": "falconpy-check.example", "action": "detect", "severity": "low"},
    {"type": "ipv4", "value": "203.0.113.99", "action": "no_action"},
    {"type": "ipv6", "value": "2001:db8:ffff::99", "action": "detect", "severity": "critical"},
]


class Mismatch(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Mismatch(message)


def sim_state(base):
    with urllib.request.urlopen(base.rstrip("/") + "/_sim/state", timeout=60) as response:
        return json.load(response)


def sim_requests(base):
    with urllib.request.urlopen(base.rstrip("/") + "/_sim/requests", timeout=60) as response:
        return json.load(response)


def ok(result, what, status=200):
    check(
        result.get("status_code") == status,
        f"{what}: expected HTTP {status}, got {result.get('status_code')}: {json.dumps(result.get('body'))[:800]}",
    )
    body = result["body"]
    for key in ("meta", "resources", "errors"):
        check(key in body, f"{what}: the body has no '{key}': {json.dumps(body)[:400]}")
    check("trace_id" in body["meta"], f"{what}: meta has no trace_id")
    return body


def full(ioc):
    item = {
        "source": "falconpy check",
        "description": "created by check_falconpy.py",
        "platforms": ["windows", "mac", "linux"],
        "applied_globally": True,
        "tags": ["falconpy-check"],
    }
    item.update(ioc)
    return item


def main():
    base, client_id, client_secret, window = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    check(falconpy.__version__ == EXPECTED_VERSION, f"falconpy {falconpy.__version__}, expected {EXPECTED_VERSION}")

    # Wrong credentials: falconpy reports the 403 and the message.
    bad = OAuth2(client_id=client_id, client_secret="wrong", base_url=base)
    result = bad.token()
    check(result["status_code"] == 403, f"wrong secret: expected 403, got {result['status_code']}")
    check(
        result["body"]["errors"][0]["message"] == "access denied, authorization failed",
        f"wrong secret: {result['body']}",
    )

    falcon = IOC(client_id=client_id, client_secret=client_secret, base_url=base)
    login = falcon.login()
    check(login["status_code"] == 201, f"login: {login}")
    check(login["body"]["token_type"] == "bearer" and login["body"]["expires_in"] > 0, f"login: {login['body']}")
    check("X-Cs-Region" not in login["headers"], "the token answer names a region")
    check(falcon.base_url.rstrip("/") == base.rstrip("/"), f"falconpy moved to {falcon.base_url}")
    check(falcon.auth_object.token_value, "no token after login")

    state = sim_state(base)
    held = {i["id"]: i for i in state["indicators"]}
    check(len(held) > window, f"the emulator holds {len(held)} indicators; start it with more than {window}")

    # Offset paging up to the window, then the documented refusal past it.
    seen = []
    offset = 0
    while offset < window:
        body = ok(falcon.indicator_combined(limit=PAGE, offset=offset, sort="created_on.asc"), f"offset {offset}")
        p = body["meta"]["pagination"]
        check(p["total"] == len(held), f"offset {offset}: total {p['total']} != {len(held)}")
        check(p["offset"] == offset, f"offset {offset}: pagination.offset is {p['offset']}")
        seen.extend(i["id"] for i in body["resources"])
        offset += len(body["resources"])
        if not body["resources"]:
            break
    check(len(seen) == window, f"offset paging returned {len(seen)} indicators, expected the window of {window}")
    result = falcon.indicator_combined(limit=PAGE, offset=window)
    check(result["status_code"] == 400, f"offset at the window: expected 400, got {result['status_code']}")
    check("after" in result["body"]["errors"][0]["message"], f"offset at the window: {result['body']['errors']}")

    # Scrolling with `after` goes past the window and sees everything exactly once.
    ids = []
    after = None
    pages = 0
    while True:
        kwargs = {"limit": PAGE, "sort": "modified_on|asc"}
        if after:
            kwargs["after"] = after
        body = ok(falcon.indicator_search(**kwargs), f"ids page {pages}")
        ids.extend(body["resources"])
        pages += 1
        after = body["meta"]["pagination"].get("after")
        if not after:
            break
        check(pages < 10_000, "after paging does not end")
    check(len(ids) == len(set(ids)), "after paging repeated an id")
    check(set(ids) == set(held), f"after paging saw {len(ids)} ids, the emulator holds {len(held)}")
    check(pages > window // PAGE, f"only {pages} pages")

    # The same with full objects and a filter, the way Netskope's plugin pulls.
    objects = []
    after = None
    flt = "type:['sha256', 'md5']+tags:!'netskope-ce'"
    while True:
        kwargs = {"limit": PAGE, "filter": flt, "sort": "modified_on|asc"}
        if after:
            kwargs["after"] = after
        body = ok(falcon.indicator_combined(**kwargs), "filtered objects")
        objects.extend(body["resources"])
        after = body["meta"]["pagination"].get("after")
        if not after:
            break
    expected = {
        i["id"]
        for i in held.values()
        if i["type"] in ("sha256", "md5") and "netskope-ce" not in i["tags"]
    }
    check({o["id"] for o in objects} == expected, "the filtered pull differs from the state")
    stamps = [o["modified_on"] for o in objects]
    check(stamps == sorted(stamps), "modified_on|asc is not ascending")

    # Create a batch: all valid -> 201 with the created objects.
    body = ok(falcon.indicator_create(indicators=[full(i) for i in NEW], comment="falconpy check"), "create", 201)
    created = {r["value"]: r for r in body["resources"]}
    check(len(created) == len(NEW), f"create returned {len(created)} resources")
    for ioc in NEW:
        r = created[ioc["value"]]
        check(len(r["id"]) == 64, f"id {r['id']!r}")
        check(r["type"] == ioc["type"] and r["action"] == ioc["action"], f"created {r}")
        check(r["applied_globally"] is True and r["expired"] is False, f"created {r}")
        check(r["created_by"] == client_id, f"created_by {r['created_by']}")

    # A second batch with a duplicate and an invalid item: per-item errors, the valid one made.
    mixed = [
        full(NEW[0]),
        full({"type": "sha256", "value": "not-a-hash", "action": "detect", "severity": "low"}),
        full({"type": "domain", "value": "falconpy-check-2.example", "action": "prevent", "severity": "low"}),
        full({"type": "domain", "value": "falconpy-check-3.example", "action": "detect", "severity": "low"}),
    ]
    result = falcon.indicator_create(indicators=mixed)
    check(result["status_code"] == 400, f"mixed create: expected 400, got {result['status_code']}")
    body = result["body"]
    check(len(body["errors"]) == 3, f"mixed create errors: {body['errors']}")
    check("Duplicate type" in body["errors"][0]["message"], f"duplicate: {body['errors'][0]}")
    kinds = [r.get("message_type") for r in body["resources"]]
    check(kinds == ["error", "error", "error", None], f"mixed create resources: {kinds}")
    third = body["resources"][3]
    check(third["value"] == "falconpy-check-3.example" and len(third["id"]) == 64, f"{third}")
    created[third["value"]] = third

    # Read back by id.
    body = ok(falcon.indicator_get(ids=[r["id"] for r in created.values()]), "get by ids")
    check(len(body["resources"]) == len(created), "get by ids: wrong count")

    # Update by id, then in bulk by filter.
    target = created["falconpy-check.example"]
    body = ok(
        falcon.indicator_update(indicators=[{"id": target["id"], "severity": "critical", "description": "updated"}]),
        "update",
    )
    check(body["resources"][0]["severity"] == "critical", f"update: {body['resources']}")
    check(body["resources"][0]["modified_on"] >= target["modified_on"], "modified_on did not move")
    body = ok(
        falcon.indicator_update(
            bulk_update={"filter": "tags:'falconpy-check'+type:'domain'", "description": "bulk"},
            comment="bulk",
        ),
        "bulk update",
    )
    check(len(body["resources"]) == 2, f"bulk update touched {len(body['resources'])}")
    check(all(r["description"] == "bulk" for r in body["resources"]), "bulk update did not apply")

    # Token refresh: the emulator's tokens outlive less than falconpy's renew window, so each
    # call above fetched a new token, and a revoked token is replaced transparently.
    tokens = sum(1 for r in sim_requests(base) if r["path"].startswith("/oauth2/token"))
    check(tokens >= 3, f"only {tokens} token requests: the refresh was not exercised")
    falcon.logout()
    body = ok(falcon.indicator_search(filter="tags:'falconpy-check'"), "after logout")
    check(len(body["resources"]) == len(created), f"after logout: {body['resources']}")

    # Alerts, the other pull source.
    alerts = Alerts(client_id=client_id, client_secret=client_secret, base_url=base)
    after = None
    pulled = []
    while True:
        kwargs = {"limit": 2, "filter": "updated_timestamp:>='2000-01-01T00:00:00Z'", "sort": "updated_timestamp|asc"}
        if after:
            kwargs["after"] = after
        body = ok(alerts.get_alerts_combined(**kwargs), "alerts")
        pulled.extend(body["resources"])
        after = body["meta"]["pagination"].get("after")
        if not after:
            break
    check(len(pulled) == len(state["alerts"]), f"alerts: pulled {len(pulled)} of {len(state['alerts'])}")
    check(all(a["ioc_value"] for a in pulled), "an alert without ioc_value")

    # Delete: some by id, the rest by filter (value list, as Netskope's plugin retracts).
    first_ids = [created["falconpy-check.example"]["id"], created["203.0.113.99"]["id"]]
    body = ok(falcon.indicator_delete(ids=first_ids, comment="falconpy check"), "delete by ids")
    check(sorted(body["resources"]) == sorted(first_ids), f"delete by ids: {body['resources']}")
    rest = [v for v in created if created[v]["id"] not in first_ids]
    flt = "value:[" + ", ".join(f"'{v}'" for v in rest) + "]"
    body = ok(falcon.indicator_delete(filter=flt), "delete by filter")
    check(len(body["resources"]) == len(rest), f"delete by filter removed {len(body['resources'])}")
    check(len(sim_state(base)["indicators"]) == len(held), "the store did not return to where it was")

    print("falconpy check passed")


if __name__ == "__main__":
    try:
        main()
    except Mismatch as mismatch:
        print(f"MISMATCH: {mismatch}", file=sys.stderr)
        sys.exit(1)
