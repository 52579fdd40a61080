"""Loads a MISP feed written by iocx's `misp` connector with PyMISP.

Usage: check_feed.py FEED_DIRECTORY

Every event named in manifest.json must load with MISPEvent().load_file, match its manifest
entry, and have each attribute value's md5 in hashes.csv. Prints "feed check passed".
"""

import hashlib
import json
import sys
from pathlib import Path

import pymisp
from pymisp import MISPEvent

EXPECTED_VERSION = "2.5.33.1"


def check(condition, message):
    if not condition:
        raise SystemExit(f"FAILED: {message}")


def main():
    check(pymisp.__version__ == EXPECTED_VERSION,
          f"pymisp {pymisp.__version__} installed; this check is written for {EXPECTED_VERSION}")
    feed = Path(sys.argv[1])
    manifest = json.loads((feed / "manifest.json").read_text())
    check(manifest, "the manifest names events")
    hashes = set((feed / "hashes.csv").read_text().split())
    total = 0
    for uuid, entry in manifest.items():
        event = MISPEvent()
        event.load_file(str(feed / f"{uuid}.json"))
        check(event.uuid == uuid, f"{uuid}.json holds event {event.uuid}")
        check(event.info == entry["info"], f"info of {uuid}")
        check(int(event.threat_level_id) == entry["threat_level_id"], f"threat level of {uuid}")
        check(int(event.timestamp.timestamp()) == entry["timestamp"], f"timestamp of {uuid}")
        check([t.name for t in event.tags] == [t["name"] for t in entry["Tag"]], f"tags of {uuid}")
        check(event.attributes, f"{uuid} has attributes")
        for a in event.attributes:
            check(a.to_ids, f"{a.value} is an IDS attribute")
            digest = hashlib.md5(a.value.encode()).hexdigest()
            check(f"{digest},{uuid}" in hashes, f"hashes.csv lacks {a.value}")
            total += 1
        # The event survives PyMISP's own feed rendering.
        rendered = event.to_feed(with_meta=True)
        check(rendered["Event"]["uuid"] == uuid, "to_feed")
    print(f"{len(manifest)} events with {total} attributes loaded")
    print("feed check passed")


if __name__ == "__main__":
    main()
