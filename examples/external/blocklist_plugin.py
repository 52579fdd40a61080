#!/usr/bin/env python3
"""An iocx external connector: pulls a plain-text or CSV threat list, and keeps a blocklist file.

iocx runs this program once per operation. It writes one JSON request line to standard input
and reads JSON lines from standard output (docs/external-protocol.md). Only the Python standard
library is used, so it runs wherever python3 does.

Options (the configuration's `options` field, a JSON object):
  source     a path or http(s) URL of a list: one indicator per line, or CSV whose first
             column is the indicator; `#` starts a comment. Needed for pulling.
  blocklist  the path of the blocklist this plugin maintains (JSON lines, one indicator each).
             Needed for pushing.
  batch      records per pull batch (default 500).
  severity   the severity given to pulled indicators (default "high").

The configuration's secret, when set, is sent as `Authorization: Bearer SECRET` to an http(s)
source.

Try it by hand:
  echo '{"protocol":1,"op":"describe","options":{}}' | python3 blocklist_plugin.py
"""

import csv
import io
import json
import os
import sys
import tempfile
import urllib.request

PROTOCOL = 1
MAX_VALUE = 2048


def emit(message):
    """Writes one protocol message; flushing makes iocx see it at once."""
    sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def log(message, level="info"):
    emit({"type": "log", "level": level, "message": message})


def fail(message, kind="config"):
    emit({"type": "error", "kind": kind, "message": message})
    sys.exit(0)


def describe(_request):
    emit(
        {
            "type": "describe",
            "protocol": PROTOCOL,
            "title": "Example blocklist plugin",
            "description": "Pulls a text or CSV list; keeps a JSON-lines blocklist file.",
            "capabilities": {"pull": True, "push": True, "retract": True, "sightings": False},
            "targets": [
                {
                    "name": "blocklist",
                    "label": "Add to the blocklist file",
                    "description": "Adds indicators to the file and removes them when they expire.",
                    "batch_size": 1000,
                    "removal": True,
                    "fields": [
                        {
                            "key": "tag",
                            "label": "Tag",
                            "kind": {"type": "text", "max_len": 64},
                            "required": False,
                            "help": "Written next to every indicator this sharing adds.",
                        }
                    ],
                }
            ],
        }
    )


def open_source(request):
    source = request["options"].get("source")
    if not source:
        fail("options.source is not set: give a path or an http(s) URL to pull from")
    if source.startswith(("http://", "https://")):
        headers = {"User-Agent": "iocx-example-plugin/1"}
        if request.get("secret"):
            headers["Authorization"] = "Bearer " + request["secret"]
        timeout = request.get("settings", {}).get("timeout_secs", 30)
        try:
            response = urllib.request.urlopen(
                urllib.request.Request(source, headers=headers), timeout=timeout
            )
        except OSError as e:
            fail(f"cannot fetch {source}: {e}", kind="network")
        identity = response.headers.get("ETag") or response.headers.get("Last-Modified") or ""
        return io.TextIOWrapper(response, encoding="utf-8", errors="replace"), identity
    try:
        stat = os.stat(source)
        handle = open(source, encoding="utf-8", errors="replace", newline="")
    except OSError as e:
        fail(f"cannot open {source}: {e.strerror}")
    return handle, f"{stat.st_size}:{int(stat.st_mtime)}"


def values(handle):
    """Yields (line number, indicator) for every non-comment line; CSV takes column one."""
    for number, line in enumerate(handle, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if "," in text:
            text = next(csv.reader([text]))[0].strip()
        if text:
            yield number, text


def pull(request):
    options = request["options"]
    size = int(options.get("batch", 500))
    severity = options.get("severity", "high")
    handle, identity = open_source(request)
    checkpoint = request.get("checkpoint") or {}
    # Resume after the last committed line when the list is the one that was being read.
    start = checkpoint.get("line", 0) if checkpoint.get("identity") == identity else 0
    if start:
        log(f"resuming after line {start}")
    records, last = [], start
    with handle:
        for number, value in values(handle):
            if number <= start:
                continue
            records.append({"value": value, "severity": severity, "tags": ["example-plugin"]})
            last = number
            if len(records) == size:
                emit({"type": "batch", "records": records,
                      "checkpoint": {"identity": identity, "line": last}})
                records = []
    # The list was read to its end: from the top, that is a complete snapshot, so indicators
    # that left the list can be retired.
    emit({"type": "batch", "records": records,
          "checkpoint": {"identity": identity, "line": last},
          "snapshot_complete": start == 0})


def blocklist_path(request):
    path = request["options"].get("blocklist")
    if not path:
        fail("options.blocklist is not set: give the path of the blocklist file")
    return path


def load(path):
    entries = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    entry = json.loads(line)
                    entries[(entry["kind"], entry["value"])] = entry
    except FileNotFoundError:
        pass
    return entries


def save(path, entries):
    """Writes the whole file to a temporary name and renames it: never half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".blocklist-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for entry in sorted(entries.values(), key=lambda e: (e["kind"], e["value"])):
            f.write(json.dumps(entry, sort_keys=True) + "\n")
    os.replace(temporary, path)


def push(request, remove=False):
    path = blocklist_path(request)
    target = request["target"]
    if target["name"] != "blocklist":
        fail(f"unknown target {target['name']}")
    tag = target.get("params", {}).get("tag")
    entries = load(path)
    results = []
    for item in request["items"]:
        key = (item["kind"], item["value"])
        if remove:
            entries.pop(key, None)
            results.append({"state": "shared"})
        elif len(item["value"]) > MAX_VALUE:
            results.append({"state": "skipped", "reason": f"longer than {MAX_VALUE} characters"})
        else:
            entries[key] = {
                "kind": item["kind"],
                "value": item["value"],
                "severity": item["severity"],
                "expires": item.get("expires"),
                "tag": tag,
                "sharing": target.get("sharing"),
            }
            results.append({"state": "shared"})
    save(path, entries)
    log(f"{'removed' if remove else 'added'} {len(request['items'])}; the blocklist holds {len(entries)}")
    emit({"type": "results", "results": results})


def validate(request):
    options = request["options"]
    if not options.get("source") and not options.get("blocklist"):
        fail("set options.source (to pull), options.blocklist (to push), or both")
    if options.get("source"):
        handle, _ = open_source(request)
        handle.close()
    if options.get("blocklist"):
        directory = os.path.dirname(os.path.abspath(options["blocklist"]))
        if not os.access(directory, os.W_OK):
            fail(f"cannot write to {directory}")
    emit({"type": "ok", "message": "the source is readable and the blocklist writable"})


def main():
    try:
        request = json.loads(sys.stdin.readline())
    except ValueError as e:
        fail(f"the request is not JSON: {e}", kind="protocol")
    if request.get("protocol") != PROTOCOL:
        fail(f"this plugin speaks protocol {PROTOCOL}, not {request.get('protocol')}")
    request.setdefault("options", {})
    op = request.get("op")
    handlers = {
        "describe": describe,
        "validate": validate,
        "pull": pull,
        "push": push,
        "retract": lambda r: push(r, remove=True),
    }
    if op not in handlers:
        fail(f"operation {op!r} is not supported", kind="unsupported")
    handlers[op](request)


if __name__ == "__main__":
    main()
