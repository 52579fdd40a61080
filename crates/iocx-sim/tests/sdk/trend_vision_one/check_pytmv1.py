#!/usr/bin/env python3
"""Drives Trend's official Python SDK, pytmv1, unchanged against the iocx Trend Vision One
emulator and checks every answer.

Usage: check_pytmv1.py BASE_URL TOKEN   (for example http://127.0.0.1:8765 secret)

The emulator must hold more than 200 suspicious objects and more than 100 exceptions (start it
with --objects and --exceptions) so that the SDK's default page size of 100 makes it follow
nextLink across several pages. The script compares what the SDK reads with what the emulator
reports at GET /_sim/state, adds and deletes on both lists, and leaves the lists as it found
them. It exits 1 with a message naming the first mismatch, 0 when everything matched.
"""

import datetime
import json
import logging
import os
import sys
import urllib.request

# pytmv1 routes through HTTP(S)_PROXY when set; the emulator is on loopback.
for _var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_var, None)

import pytmv1  # noqa: E402
from pytmv1 import (  # noqa: E402
    ListExceptionsResp,
    ListSuspiciousResp,
    ObjectRequest,
    ObjectType,
    ResultCode,
    RiskLevel,
    ScanAction,
    SuspiciousObjectRequest,
)

EXPECTED_VERSION = "0.11.0"
SO_PATH = "/threatintel/suspiciousObjects"
EX_PATH = "/threatintel/suspiciousObjectExceptions"

# Values the check adds; none of them is in the emulator's seed data.
URL = "http://sdk-check.example/landing/login.php"
DOMAIN = "sdk-check.example"
SHA256 = "a1" * 32
IP = "203.0.113.77"
MAIL = "sdk-check@sdk-check.example"
BAD_SHA1 = "abc"


class Mismatch(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Mismatch(message)


def sim_state(base):
    with urllib.request.urlopen(base.rstrip("/") + "/_sim/state", timeout=30) as response:
        return json.load(response)


def keys_of_wire(items):
    return {(i["type"], i[i["type"]]) for i in items}


def keys_of_sdk(items):
    return {(i.type.value, i.value) for i in items}


def parse_time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc
    )


def ok(result, what):
    check(
        result.result_code == ResultCode.SUCCESS,
        f"{what}: expected SUCCESS, got {result.result_code} "
        f"(error={getattr(result, 'error', None)}, errors={getattr(result, 'errors', None)})",
    )
    return result.response


def consume(call):
    seen = []
    result = call(seen.append)
    response = ok(result, "consume")
    check(
        response.total_consumed == len(seen),
        f"total_consumed {response.total_consumed} != items handed to the consumer {len(seen)}",
    )
    return seen


def find(client, filter_text):
    """One page of the Suspicious Object List narrowed by a TMV1-Filter (core call, as the
    SDK's own docs show for parameters the Object API does not expose)."""
    result = client._core.send(
        ListSuspiciousResp,
        SO_PATH,
        params={"top": 50},
        headers={"TMV1-Filter": filter_text},
    )
    return ok(result, f"list with filter {filter_text!r}").items


def run(base, token):
    check(
        pytmv1.__version__ == EXPECTED_VERSION,
        f"pytmv1 {pytmv1.__version__} is installed; this check was verified with "
        f"{EXPECTED_VERSION} (see requirements.txt)",
    )
    client = pytmv1.init("iocx-sdk-check", token, base)

    # Connectivity ("Test connection"), and the 401 envelope with a wrong key.
    status = ok(client.system.check_connectivity(), "check_connectivity").status
    check(status == "available", f"check_connectivity: status {status!r}")
    wrong = pytmv1.Client(pytmv1.core.Core("iocx-sdk-check", "wrong-" + token, base, 1, 1, 10, 30))
    denied = wrong.system.check_connectivity()
    check(denied.result_code == ResultCode.ERROR, "a wrong token was accepted")
    check(
        denied.error.status == 401 and denied.error.code == "Unauthorized",
        f"a wrong token: expected 401 Unauthorized, got {denied.error}",
    )
    print("ok: connectivity check, 401 with a wrong key")

    state = sim_state(base)
    so_truth = keys_of_wire(state["suspiciousObjects"])
    ex_truth = keys_of_wire(state["exceptions"])
    check(len(so_truth) > 200, f"start the emulator with --objects > 200 (it holds {len(so_truth)})")
    check(len(ex_truth) > 100, f"start the emulator with --exceptions > 100 (it holds {len(ex_truth)})")

    # One page: the SDK's default request, parsed into SuspiciousObject models.
    first = ok(client.object.list_suspicious(), "list_suspicious")
    check(len(first.items) == 100, f"list_suspicious: {len(first.items)} items, expected 100 (default top)")
    check(first.next_link is not None, "list_suspicious: no nextLink although more objects exist")
    check(
        first.next_link.split("?")[0].endswith("/v3.0" + SO_PATH),
        f"nextLink {first.next_link!r} does not point at the list",
    )
    for item in first.items:
        check(isinstance(item, pytmv1.SuspiciousObject), f"item parsed as {type(item)}")
        check((item.type.value, item.value) in so_truth, f"listed {item} is not held by the emulator")
        parse_time(item.last_modified_date_time)
        parse_time(item.expired_date_time)
    stamps = [parse_time(i.last_modified_date_time) for i in first.items]
    check(stamps == sorted(stamps, reverse=True), "default order is not lastModifiedDateTime desc")
    first_ex = ok(client.object.list_exception(), "list_exception")
    check(len(first_ex.items) == 100 and first_ex.next_link, "list_exception: expected a full first page and a nextLink")
    print(f"ok: list_suspicious and list_exception (first pages of {len(so_truth)} and {len(ex_truth)})")

    # Paging through everything with the consume_* APIs.
    objects = consume(client.object.consume_suspicious)
    check(len(objects) == len(so_truth), f"consume_suspicious: {len(objects)} items, the emulator holds {len(so_truth)}")
    check(keys_of_sdk(objects) == so_truth, "consume_suspicious: the set of objects differs from the emulator's")
    exceptions = consume(client.object.consume_exception)
    check(len(exceptions) == len(ex_truth), f"consume_exception: {len(exceptions)} items, the emulator holds {len(ex_truth)}")
    check(keys_of_sdk(exceptions) == ex_truth, "consume_exception: the set of exceptions differs from the emulator's")
    print(f"ok: consume_suspicious ({len(objects)}) and consume_exception ({len(exceptions)}) across pages")

    # Paging with parameters and a filter through the SDK core (the filter is re-sent per page).
    flt = "(type eq 'domain' or type eq 'ip') and not riskLevel eq 'low'"
    wanted = {
        (i["type"], i[i["type"]])
        for i in state["suspiciousObjects"]
        if i["type"] in ("domain", "ip") and i["riskLevel"] != "low"
    }
    filtered = []
    pages = ok(
        client._core.send_linkable(
            ListSuspiciousResp,
            SO_PATH,
            filtered.append,
            params={"top": 50, "orderBy": "lastModifiedDateTime asc"},
            headers={"TMV1-Filter": flt},
        ),
        "filtered consume",
    )
    check(pages.total_consumed == len(wanted), f"filtered consume: {pages.total_consumed} items, expected {len(wanted)}")
    check(keys_of_sdk(filtered) == wanted, "filtered consume: wrong set of objects")
    check(len(wanted) > 100, "the filtered set should span more than two pages of 50")
    stamps = [parse_time(i.last_modified_date_time) for i in filtered]
    check(stamps == sorted(stamps), "orderBy=lastModifiedDateTime asc was not honoured across pages")
    print(f"ok: filtered paging with top=50 and orderBy asc ({len(filtered)} objects)")

    # A filter outside the grammar comes back as the documented 400 envelope.
    bad = client._core.send(ListSuspiciousResp, SO_PATH, headers={"TMV1-Filter": "type ne 'url'"})
    check(bad.result_code == ResultCode.ERROR, "an unsupported filter was accepted")
    check(bad.error.status == 400 and bad.error.code == "BadRequest", f"unsupported filter: got {bad.error}")
    print("ok: unsupported filter syntax answers 400 BadRequest")

    # Adds: all valid.
    added = ok(
        client.object.add_suspicious(
            SuspiciousObjectRequest(
                object_type=ObjectType.URL,
                object_value=URL,
                description="pytmv1 check",
                scan_action=ScanAction.LOG,
                risk_level=RiskLevel.LOW,
                days_to_expiration=7,
            ),
            SuspiciousObjectRequest(
                object_type=ObjectType.DOMAIN,
                object_value=DOMAIN,
                scan_action=ScanAction.BLOCK,
                risk_level=RiskLevel.MEDIUM,
                days_to_expiration=-1,
            ),
            SuspiciousObjectRequest(object_type=ObjectType.FILE_SHA256, object_value=SHA256),
        ),
        "add_suspicious",
    )
    check([i.status for i in added.items] == [201, 201, 201], f"add_suspicious statuses {added.items}")
    got = {i.value: i for i in find(client, f"url eq '{URL}' or domain eq '{DOMAIN}' or fileSha256 eq '{SHA256}'")}
    check(set(got) == {URL, DOMAIN, SHA256}, f"after add_suspicious the list holds {sorted(got)}")
    now = datetime.datetime.now(datetime.timezone.utc)
    url = got[URL]
    check(
        (url.risk_level, url.scan_action, url.description) == (RiskLevel.LOW, ScanAction.LOG, "pytmv1 check"),
        f"the URL came back as {url}",
    )
    days = (parse_time(url.expired_date_time) - now).total_seconds() / 86400
    check(6.9 < days < 7.1, f"daysToExpiration 7 gave expiredDateTime {url.expired_date_time}")
    check(abs((parse_time(url.last_modified_date_time) - now).total_seconds()) < 120, "lastModifiedDateTime is not now")
    domain = got[DOMAIN]
    check(domain.risk_level == RiskLevel.MEDIUM and domain.scan_action == ScanAction.BLOCK, f"domain came back as {domain}")
    check(parse_time(domain.expired_date_time).year > now.year + 100, "daysToExpiration -1 should never expire")
    check(got[SHA256].risk_level == RiskLevel.HIGH, "riskLevel should default to high")
    check(got[SHA256].description is None, "an add without description should list without one")
    print("ok: add_suspicious (201 each), fields, defaults and expiry as listed")

    # Adds: a mix of valid and invalid items gives per-item results in request order.
    mixed = client.object.add_suspicious(
        SuspiciousObjectRequest(object_type=ObjectType.IP, object_value=IP, risk_level=RiskLevel.HIGH),
        SuspiciousObjectRequest(object_type=ObjectType.FILE_SHA1, object_value=BAD_SHA1),
        SuspiciousObjectRequest(object_type=ObjectType.SENDER_MAIL_ADDRESS, object_value=MAIL),
    )
    check(mixed.result_code == ResultCode.ERROR, "a batch with an invalid item reported SUCCESS")
    check([e.status for e in mixed.errors] == [201, 400, 201], f"mixed add statuses {[e.status for e in mixed.errors]}")
    check(mixed.errors[1].code == "BadRequest" and "fileSha1" in (mixed.errors[1].message or ""), f"the invalid item's error: {mixed.errors[1]}")
    got = {i.value for i in find(client, f"ip eq '{IP}' or senderMailAddress eq '{MAIL}' or fileSha1 eq '{BAD_SHA1}'")}
    check(got == {IP, MAIL}, f"after the mixed add the list holds {sorted(got)}: valid items must be stored, the invalid one not")
    print("ok: mixed add answers 207 with [201, 400, 201] and stores the valid items")

    # Exceptions: add, see inExceptionList on the suspicious object, delete.
    ex_added = ok(
        client.object.add_exception(
            ObjectRequest(object_type=ObjectType.DOMAIN, object_value=DOMAIN, description="known partner"),
            ObjectRequest(object_type=ObjectType.IP, object_value="192.0.2.0/24"),
        ),
        "add_exception",
    )
    check([i.status for i in ex_added.items] == [201, 201], f"add_exception statuses {ex_added.items}")
    listed = ok(
        client._core.send(ListExceptionsResp, EX_PATH, params={"top": 50}, headers={"TMV1-Filter": f"domain eq '{DOMAIN}' or ip eq '192.0.2.0/24'"}),
        "list exceptions with filter",
    ).items
    check({i.value for i in listed} == {DOMAIN, "192.0.2.0/24"}, f"exceptions listed: {listed}")
    check(next(i for i in listed if i.value == DOMAIN).description == "known partner", "exception description lost")
    flagged = {i.value: i.in_exception_list for i in find(client, f"domain eq '{DOMAIN}' or url eq '{URL}'")}
    check(flagged == {DOMAIN: True, URL: False}, f"inExceptionList: {flagged}")
    ex_deleted = ok(
        client.object.delete_exception(
            ObjectRequest(object_type=ObjectType.DOMAIN, object_value=DOMAIN),
            ObjectRequest(object_type=ObjectType.IP, object_value="192.0.2.0/24", description="ignored on delete"),
        ),
        "delete_exception",
    )
    check([i.status for i in ex_deleted.items] == [204, 204], f"delete_exception statuses {ex_deleted.items}")
    check(keys_of_wire(sim_state(base)["exceptions"]) == ex_truth, "the Exception List did not return to its start")
    print("ok: add_exception (201), inExceptionList, delete_exception (204)")

    # Deletes on the Suspicious Object List, including one unknown object.
    deleted = ok(
        client.object.delete_suspicious(
            ObjectRequest(object_type=ObjectType.URL, object_value=URL, description="pytmv1 sends this too"),
            ObjectRequest(object_type=ObjectType.DOMAIN, object_value=DOMAIN),
            ObjectRequest(object_type=ObjectType.FILE_SHA256, object_value=SHA256),
            ObjectRequest(object_type=ObjectType.IP, object_value=IP),
            ObjectRequest(object_type=ObjectType.SENDER_MAIL_ADDRESS, object_value=MAIL),
        ),
        "delete_suspicious",
    )
    check([i.status for i in deleted.items] == [204] * 5, f"delete_suspicious statuses {deleted.items}")
    missing = client.object.delete_suspicious(ObjectRequest(object_type=ObjectType.URL, object_value=URL))
    check(missing.result_code == ResultCode.ERROR, "deleting an unknown object reported SUCCESS")
    check(
        (missing.errors[0].status, missing.errors[0].code) == (404, "NotFound"),
        f"deleting an unknown object: {missing.errors}",
    )
    check(find(client, f"url eq '{URL}' or domain eq '{DOMAIN}'") == [], "deleted objects are still listed")
    after = consume(client.object.consume_suspicious)
    check(keys_of_sdk(after) == so_truth, "the Suspicious Object List did not return to its start")
    print("ok: delete_suspicious (204 each, 404 for an unknown object); lists back to their start")


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    base, token = sys.argv[1], sys.argv[2]
    # pytmv1 logs every caught error with a traceback; the checks below say what matters.
    logging.getLogger("pytmv1").setLevel(logging.CRITICAL)
    try:
        run(base, token)
    except Mismatch as e:
        print(f"FAIL: pytmv1 against {base}: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # an SDK crash is a mismatch too
        print(f"FAIL: pytmv1 against {base} raised {type(e).__name__}: {e}", file=sys.stderr)
        raise
    print("pytmv1 check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
