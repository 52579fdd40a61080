#!/usr/bin/env python3
"""Drives Carbon Black's official Python SDK, cbc_sdk, unchanged against the iocx Carbon Black
Cloud emulator and checks every answer.

Usage: check_cbc_sdk.py BASE_URL TOKEN ORG_KEY   (BASE_URL is https://127.0.0.1:PORT)

The SDK only accepts https URLs; the emulator's certificate is self-signed, so the check turns
verification off with ssl_verify=False. The emulator must hold more than 250 alerts (start it
with --alerts) so that alert queries page. The script compares what the SDK reads with what the
emulator reports at GET /_sim/state, creates a feed with reports, lists feeds, replaces the
reports twice (each replacement is full state), updates the feed info, subscribes a watchlist,
deletes everything it made, and queries alerts with criteria, a time range and paging. It exits 1
naming the first mismatch, 0 when everything matched.
"""

import datetime
import json
import os
import ssl
import sys
import time
import urllib.request

for _var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_var, None)

import cbc_sdk  # noqa: E402
from cbc_sdk import CBCloudAPI  # noqa: E402
from cbc_sdk.enterprise_edr import Feed, Report, Watchlist, IOC_V2  # noqa: E402
from cbc_sdk.errors import ClientError, ObjectNotFoundError, UnauthorizedError  # noqa: E402
from cbc_sdk.platform import Alert  # noqa: E402

EXPECTED_VERSION = "1.5.10"


class Mismatch(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Mismatch(message)


def sim_state(base):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(base.rstrip("/") + "/_sim/state", timeout=30, context=context) as r:
        return json.load(r)


def report_raw(rid, title, field, values, severity=5):
    return {
        "id": rid,
        "timestamp": int(time.time()),
        "title": title,
        "description": "Pushed by the iocx SDK check",
        "severity": severity,
        "tags": ["iocx"],
        "iocs_v2": [{"id": rid + "-ioc", "match_type": "equality", "field": field, "values": values}],
    }


def main():
    base, token, org_key = sys.argv[1], sys.argv[2], sys.argv[3]
    check(cbc_sdk.__version__ == EXPECTED_VERSION,
          f"cbc_sdk {cbc_sdk.__version__} installed; this check was written for {EXPECTED_VERSION}")
    api = CBCloudAPI(url=base, token=token, org_key=org_key, ssl_verify=False)

    # A wrong key is refused with 401, which the SDK raises as UnauthorizedError.
    bad = CBCloudAPI(url=base, token="WRONG/KEY", org_key=org_key, ssl_verify=False)
    try:
        list(bad.select(Feed))
        raise Mismatch("a wrong API key was accepted")
    except UnauthorizedError:
        pass

    # Create a feed with two reports (the SDK gives reports without an id a UUID on save).
    sha = "ab" * 32
    ip = "203.0.113.50"
    r1 = Report.create(api, "iocx check sha256", "hashes", 7) \
        .add_ioc(IOC_V2.create_equality(api, "ioc-sha", "process_sha256", sha)).build()
    r2 = Report.create(api, "iocx check ipv4", "addresses", 4) \
        .add_ioc(IOC_V2.create_equality(api, "ioc-ip", "netconn_ipv4", ip)).build()
    feed = Feed.create(api, "iocx SDK check feed", "https://iocx.example/", "SDK check", "Partner") \
        .add_reports([r1, r2]).build()
    feed.save()
    check(feed.id, "the created feed has no id")
    feed_id = feed.id
    state = sim_state(base)
    made = [f for f in state["feeds"] if f["feedinfo"]["id"] == feed_id]
    check(len(made) == 1, f"feed {feed_id} is not in the emulator's state")
    check(len(made[0]["reports"]) == 2, f"expected 2 reports, state has {len(made[0]['reports'])}")
    check(made[0]["feedinfo"]["owner"] == org_key, "the feed's owner is not the org key")

    # List feeds: ours is there; public feeds only with include_public.
    names = {f.name for f in api.select(Feed)}
    check("iocx SDK check feed" in names, f"feed missing from the list: {names}")
    public = list(api.select(Feed).where(include_public=True))
    check(len(public) > len(names), "include_public=True listed no public feed")

    # Fetch it by id and read its reports through the SDK.
    fetched = api.select(Feed, feed_id)
    check(fetched.name == "iocx SDK check feed", f"feed fetched by id has name {fetched.name!r}")
    reports = fetched.reports
    check({r.title for r in reports} == {"iocx check sha256", "iocx check ipv4"},
          f"reports read back: {[r.title for r in reports]}")
    check(any(i.values == [sha] for r in reports for i in r.iocs_), "the sha256 IOC did not survive")

    # Replace the reports (full state): only the new set remains.
    fetched.replace_reports_rawdata([
        report_raw("iocx-r3", "iocx domains", "netconn_domain", ["evil.example", "bad.example"]),
        report_raw("iocx-r4", "iocx md5", "process_hash", ["0123456789abcdef0123456789abcdef"], 9),
    ])
    state = sim_state(base)
    now = [f for f in state["feeds"] if f["feedinfo"]["id"] == feed_id][0]["reports"]
    check(sorted(r["id"] for r in now) == ["iocx-r3", "iocx-r4"], f"after replace: {[r['id'] for r in now]}")
    titles = {r.title for r in api.select(Feed, feed_id).reports}
    check(titles == {"iocx domains", "iocx md5"}, f"reports after replace: {titles}")

    # replace_reports with Report objects, then append (the SDK fetches and resends all).
    again = api.select(Feed, feed_id)
    again.reports  # loads the current reports
    extra = Report(api, initial_data=report_raw("iocx-r5", "iocx ipv6", "netconn_ipv6", ["2001:db8::5"]),
                   feed_id=feed_id)
    again.append_reports([extra])
    ids = sorted(r["id"] for r in [f for f in sim_state(base)["feeds"] if f["feedinfo"]["id"] == feed_id][0]["reports"])
    check(ids == ["iocx-r3", "iocx-r4", "iocx-r5"], f"after append: {ids}")

    # An invalid report (severity out of range) is refused by the emulator with a 400.
    try:
        api.post_object(f"/threathunter/feedmgr/v2/orgs/{org_key}/feeds/{feed_id}/reports",
                        {"reports": [dict(report_raw("bad", "bad", "process_hash", ["x"]), severity=11)]})
        raise Mismatch("a report with severity 11 was accepted")
    except ClientError as e:
        check(e.error_code == 400, f"severity 11 answered {e.error_code}")

    # Update the feed info.
    again.update(summary="Updated by the SDK check")
    check(Feed(api, feed_id).summary == "Updated by the SDK check", "the summary did not change")

    # Subscribe a watchlist to the feed, then remove it.
    watchlist = Watchlist.create_from_feed(again, name="iocx check subscription", description="SDK check")
    watchlist.save()
    check(watchlist.id, "the watchlist has no id")
    check(watchlist.classifier_ == ("feed_id", feed_id), f"classifier {watchlist.classifier_}")
    check(any(w.id == watchlist.id for w in api.select(Watchlist)), "the watchlist is not listed")
    watchlist.enable_alerts()
    check(api.select(Watchlist, watchlist.id).alerts_enabled is True, "alerts were not enabled")
    watchlist.delete()

    # Delete the feed; fetching it afterwards is ObjectNotFoundError. (Feed(api, id) rather than
    # api.select(Feed, id), which the SDK caches for a minute.)
    again.delete()
    check(all(f["feedinfo"]["id"] != feed_id for f in sim_state(base)["feeds"]), "the feed survived its deletion")
    try:
        Feed(api, feed_id)
        raise Mismatch("a deleted feed could still be fetched")
    except ObjectNotFoundError:
        pass

    # Alerts: everything, paged by the SDK (100 rows a page).
    total = sim_state(base)["alerts"]
    check(total > 250, f"start the emulator with more than 250 alerts (it has {total})")
    everything = list(api.select(Alert))
    check(len(everything) == total, f"the SDK read {len(everything)} alerts of {total}")
    check(len({a.id for a in everything}) == total, "paging repeated or skipped alerts")
    stamps = [a.backend_timestamp for a in everything]
    check(stamps == sorted(stamps, reverse=True), "alerts are not newest first by default")

    # Criteria and a time range.
    severe = list(api.select(Alert).set_minimum_severity(7))
    check(severe and all(a.severity >= 7 for a in severe), "minimum_severity was not applied")
    check(len(severe) == len([a for a in everything if a.severity >= 7]), "minimum_severity count differs")
    malware = list(api.select(Alert).add_criteria("process_reputation", ["KNOWN_MALWARE"]))
    check(all(a.process_reputation == "KNOWN_MALWARE" for a in malware), "criteria were not applied")
    end = datetime.datetime.now(datetime.timezone.utc)
    start = end - datetime.timedelta(days=2)
    recent = list(api.select(Alert).set_time_range(start=start.isoformat(), end=end.isoformat())
                  .sort_by("backend_timestamp", "ASC"))
    cut = start.strftime("%Y-%m-%dT%H:%M:%S")
    check(all(a.backend_timestamp >= cut for a in recent), "time_range was not applied")
    check([a.backend_timestamp for a in recent] == sorted(a.backend_timestamp for a in recent),
          "sort ASC was not applied")
    expected_recent = [a for a in everything if a.backend_timestamp >= cut]
    check(abs(len(recent) - len(expected_recent)) <= 1, f"{len(recent)} recent alerts, expected {len(expected_recent)}")
    one = everything[0]
    check(api.select(Alert, one.id).id == one.id, "an alert fetched by id differs")
    check(len(api.select(Alert).set_minimum_severity(7)) == len(severe), "len(query) differs from the rows read")

    print(f"cbc_sdk check passed: feed created, listed, replaced, appended, updated, subscribed and deleted; "
          f"{total} alerts paged, {len(severe)} severe, {len(malware)} known malware, {len(recent)} in the last 2 days")


if __name__ == "__main__":
    try:
        main()
    except Mismatch as e:
        print(f"MISMATCH: {e}", file=sys.stderr)
        sys.exit(1)
