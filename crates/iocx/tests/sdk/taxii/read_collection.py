"""Reads an iocx TAXII 2.1 collection page by page with the official taxii2-client.

Usage: read_collection.py DISCOVERY_URL USER PASSWORD COLLECTION_TITLE
Prints "objects=N pages=P"; fails when a page is malformed or an object is not a STIX 2.1
indicator.
"""

import sys

from taxii2client.v21 import Server, as_pages

url, user, password, title = sys.argv[1:5]
server = Server(url, user=user, password=password)
root = server.default or server.api_roots[0]
collection = next(c for c in root.collections if c.title == title)
assert collection.can_read, "the collection is readable"
total = 0
pages = 0
seen = set()
for envelope in as_pages(collection.get_objects, per_request=10):
    pages += 1
    for obj in envelope.get("objects", []):
        assert obj["type"] == "indicator" and obj["spec_version"] == "2.1", obj
        assert obj["pattern"].startswith("[domain-name:value = '"), obj
        assert obj["id"] not in seen, "no object twice"
        seen.add(obj["id"])
        total += 1
manifest = collection.get_manifest()
print(f"objects={total} pages={pages} manifest={len(manifest.get('objects', []))}")
