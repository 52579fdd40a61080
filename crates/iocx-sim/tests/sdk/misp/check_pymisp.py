"""PyMISP, MISP's official Python SDK, against the iocx MISP emulator.

Usage: check_pymisp.py BASE_URL API_KEY

Connects as PyMISP(url, key, ssl=False) does (getVersion, users/view/me, describeTypes), adds
an event with attributes and tags, reads it back, and pages through /attributes/restSearch
with the filters a connector sends. Prints "pymisp check passed" when every step holds.
"""

import sys
import time

import pymisp
from pymisp import MISPEvent, PyMISP

EXPECTED_VERSION = "2.5.33.1"


def check(condition, message):
    if not condition:
        raise SystemExit(f"FAILED: {message}")


def main():
    url, key = sys.argv[1], sys.argv[2]
    check(pymisp.__version__ == EXPECTED_VERSION,
          f"pymisp {pymisp.__version__} installed; this check is written for {EXPECTED_VERSION}")

    # A wrong key is refused at construction.
    try:
        PyMISP(url, "not-the-key", ssl=False, timeout=10)
    except pymisp.PyMISPError as e:
        print(f"wrong key refused: {str(e)[:80]}")
    else:
        check(False, "a wrong key was accepted")

    misp = PyMISP(url, key, ssl=False, timeout=30)
    check(misp.misp_instance_version["version"].startswith("2.5."), "getVersion")
    check(misp._current_role is not None, "the role of the key's user")
    started = int(time.time()) - 5

    event = MISPEvent()
    event.info = "pymisp check: phishing wave"
    event.distribution = 0
    event.threat_level_id = 2
    event.analysis = 1
    event.add_tag("tlp:green")
    for i in range(120):
        event.add_attribute("ip-dst", f"203.0.113.{i}", comment=f"c2 {i}")
    event.add_attribute("domain", "login-portal.evil.example", to_ids=True)
    event.add_attribute("url", "http://login-portal.evil.example/verify.php")
    event.add_attribute("sha256", "ab" * 32)
    event.add_attribute("filename|sha256", "invoice.exe|" + "cd" * 32)
    event.add_attribute("email-src", "billing@evil.example", to_ids=False)
    added = misp.add_event(event, pythonify=True)
    check(isinstance(added, MISPEvent), f"add_event answered {added!r}"[:300])
    check(added.id and added.uuid, "the stored event has an id and a uuid")
    check(len(added.attributes) == 125, f"{len(added.attributes)} attributes stored, 125 sent")
    check(any(t.name == "tlp:green" for t in added.tags), "the event tag")
    print(f"event {added.id} added with {len(added.attributes)} attributes")

    fetched = misp.get_event(added.id, pythonify=True)
    check(fetched.uuid == added.uuid, "get_event by id")
    check(int(fetched.threat_level_id) == 2, "the threat level")
    check(misp.event_exists(added.uuid), "event_exists by uuid")

    # An attribute added afterwards, and a tag on it.
    extra = misp.add_attribute(added.id, {"type": "hostname", "value": "cdn.evil.example"}, pythonify=True)
    check(extra.value == "cdn.evil.example", f"add_attribute answered {extra!r}"[:300])
    misp.tag(extra.uuid, "kill-chain:command-and-control")

    # Paging through attributes as a connector does.
    seen = []
    page = 1
    while True:
        batch = misp.search(controller="attributes", return_format="json", page=page, limit=50,
                            timestamp=str(started), to_ids=True, include_event_tags=True,
                            type_attribute=["ip-dst", "domain", "url", "sha256", "filename|sha256", "hostname"],
                            pythonify=True)
        check(isinstance(batch, list), f"restSearch answered {batch!r}"[:300])
        seen.extend(batch)
        if len(batch) < 50:
            break
        page += 1
    check(page == 3, f"{page} pages of 50")
    check(len(seen) == 125, f"{len(seen)} IDS attributes found, 125 expected")
    values = {a.value for a in seen}
    check("billing@evil.example" not in values, "to_ids=False attributes are left out")
    check("cdn.evil.example" in values, "the later attribute")
    check(all(a.event_id == added.id for a in seen), "every attribute names its event")
    check(any(t.name == "tlp:green" for t in seen[0].tags), "event tags are included")

    tagged = misp.search(controller="attributes", tags=["kill-chain:%"], pythonify=True)
    check([a.value for a in tagged] == ["cdn.evil.example"], f"tag search: {tagged}")
    none = misp.search(controller="attributes", tags=["!tlp:green"], pythonify=True)
    check(none == [], "negated tag")

    events = misp.search(controller="events", eventinfo="pymisp check%", metadata=True, pythonify=True)
    check(len(events) == 1 and events[0].uuid == added.uuid, f"events search: {events}")

    misp.publish(added.id)
    check(misp.get_event(added.id, pythonify=True).published, "published")
    misp.delete_attribute(extra.id)
    after = misp.search(controller="attributes", value="cdn.evil.example", pythonify=True)
    check(after == [], "a deleted attribute is gone from searches")
    print("pymisp check passed")


if __name__ == "__main__":
    main()
