#!/usr/bin/env python3
"""Drives pysnow unchanged against the iocx ServiceNow emulator and checks every answer.

Usage: check_pysnow.py BASE_URL USER PASSWORD CLIENT_ID CLIENT_SECRET
       (BASE_URL is http://127.0.0.1:PORT)

pysnow builds https://INSTANCE.service-now.com unless given host= and use_ssl=False, which is how
it is pointed at the emulator here. The emulator must hold more than 250 observables (start it
with --records) so that paging takes several pages. The script compares what pysnow reads with
GET /_sim/state, pages through observables with limit/offset (buffered and streamed), filters
with a QueryBuilder query, creates, updates and deletes an observable, creates a security
incident, and repeats a read with an OAuth token. It exits 1 naming the first mismatch.
"""

import datetime
import importlib.metadata
import json
import os
import sys
import urllib.request

for _var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_var, None)

import pysnow  # noqa: E402
import requests  # noqa: E402
from pysnow.exceptions import NoResults  # noqa: E402

EXPECTED_VERSION = "0.7.17"
PAGE = 100


class Mismatch(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Mismatch(message)


def sim_state(base):
    with urllib.request.urlopen(base.rstrip("/") + "/_sim/state", timeout=30) as r:
        return json.load(r)["tables"]


def main():
    base, user, password, client_id, client_secret = sys.argv[1:6]
    version = importlib.metadata.version("pysnow")
    check(version == EXPECTED_VERSION, f"pysnow {version} installed; this check was written for {EXPECTED_VERSION}")
    host = base.split("://", 1)[1]
    client = pysnow.Client(host=host, use_ssl=False, user=user, password=password)
    check(client.base_url == base, f"pysnow built {client.base_url}, expected {base}")

    # Wrong credentials: 401, which pysnow surfaces as requests' HTTPError.
    wrong = pysnow.Client(host=host, use_ssl=False, user=user, password="wrong")
    try:
        wrong.resource(api_path="/table/sn_ti_observable").get(query={}, limit=1).all()
        raise Mismatch("a wrong password was accepted")
    except requests.HTTPError as e:
        check(e.response.status_code == 401, f"a wrong password answered {e.response.status_code}")

    observables = client.resource(api_path="/table/sn_ti_observable")
    expected = {r["sys_id"] for r in sim_state(base)["sn_ti_observable"]}
    check(len(expected) > 2 * PAGE + 50, f"start the emulator with more than {2 * PAGE + 50} observables")

    # Page with limit/offset, ordered, and compare with the emulator's state.
    seen = []
    offset = 0
    while True:
        response = observables.get(query="ORDERBYsys_created_on", limit=PAGE, offset=offset,
                                   fields=["sys_id", "value", "type.value", "sys_created_on"])
        page = list(response.all())
        total = int(response.headers["X-Total-Count"])
        check(total == len(expected), f"X-Total-Count {total}, state has {len(expected)}")
        link = response.headers.get("Link", "")
        if offset + PAGE < total:
            check('rel="next"' in link, f"no next link on page at offset {offset}: {link!r}")
        seen.extend(page)
        if not page or offset + PAGE >= total:
            break
        offset += PAGE
    ids = [r["sys_id"] for r in seen]
    check(len(ids) == len(set(ids)), "paging repeated a record")
    check(set(ids) == expected, f"paging read {len(set(ids))} of {len(expected)} observables")
    created = [r["sys_created_on"] for r in seen]
    check(created == sorted(created), "ORDERBYsys_created_on was not applied")
    check(all("type.value" in r for r in seen), "the dot-walked field type.value is missing")

    # The same pages streamed (pysnow's ijson parser).
    streamed = list(observables.get(query="ORDERBYsys_created_on", limit=PAGE, offset=PAGE,
                                    stream=True).all())
    check([r["sys_id"] for r in streamed] == ids[PAGE:2 * PAGE], "streamed page differs from the buffered one")

    # A QueryBuilder query: recent hashes (MD5 or SHA256).
    since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=10)
    qb = (pysnow.QueryBuilder().field("type.value").equals(["MD5", "SHA256"])
          .AND().field("sys_updated_on").greater_than(since))
    hashes = list(observables.get(query=qb, fields=["value", "type.value", "sys_updated_on"]).all())
    cut = since.strftime("%Y-%m-%d %H:%M:%S")
    check(hashes and all(h["type.value"] in ("MD5", "SHA256") for h in hashes), "the IN condition was not applied")
    check(all(h["sys_updated_on"] > cut for h in hashes), "the > condition on a date was not applied")
    state = sim_state(base)
    types = {t["sys_id"]: t["value"] for t in state["sn_ti_observable_type"]}
    want = [o for o in state["sn_ti_observable"]
            if types.get(o["type"]) in ("MD5", "SHA256") and o["sys_updated_on"] > cut]
    check(len(hashes) == len(want), f"QueryBuilder query read {len(hashes)}, expected {len(want)}")

    # Netskope's pull query, verbatim in shape.
    start = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=7)).strftime("%Y-%m-%d %H:%M:%S")
    end = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    ce_query = (f"sys_updated_on>{start}^sys_updated_on<{end}^type.value=MD5^ORtype.value=SHA256"
                "^ORtype.value=URL")
    ce = list(observables.get(query=ce_query, fields=["value", "type.value", "notes"]).all())
    check(all(r["type.value"] in ("MD5", "SHA256", "URL") for r in ce), "the ^OR group was not applied")

    # Create, update and delete an observable. A fresh resource: pysnow keeps a resource's last
    # sysparm_fields and sends them with later requests, POST included, and ServiceNow honours
    # sysparm_fields on a POST's answer too.
    observables = client.resource(api_path="/table/sn_ti_observable")
    value = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    made = observables.create(payload={"value": value, "type": "SHA256", "notes": "pysnow check"}).one()
    sys_id = made["sys_id"]
    check(len(sys_id) == 32, f"sys_id {sys_id!r}")
    check(made["value"] == value, "the created value differs")
    check(isinstance(made["type"], dict) and made["type"]["value"] in types, "type did not resolve to a reference")
    check(types[made["type"]["value"]] == "SHA256", "type resolved to the wrong observable type")
    found = observables.get(query={"value": value}).one()
    check(found["sys_id"] == sys_id, "the new observable is not found by value")
    updated = observables.update(query={"sys_id": sys_id}, payload={"finding": "Malicious"}).one()
    check(updated["finding"] == "Malicious", f"finding after update: {updated['finding']!r}")
    check(updated["sys_mod_count"] == "1", f"sys_mod_count after update: {updated['sys_mod_count']!r}")
    deleted = observables.delete(query={"sys_id": sys_id})
    check(deleted == {"status": "record deleted"}, f"delete answered {deleted!r}")
    try:
        observables.get(query={"sys_id": sys_id}).one()
        raise Mismatch("the deleted observable is still there")
    except NoResults:
        pass
    check(sys_id not in {r["sys_id"] for r in sim_state(base)["sn_ti_observable"]}, "the state still has it")

    # A security incident.
    incidents = client.resource(api_path="/table/sn_si_incident")
    sir = incidents.create(payload={"short_description": "pysnow check: malware beacon",
                                    "description": "Raised by the iocx pysnow check",
                                    "priority": "2", "assigned_to": "abel.tuter"}).one()
    check(sir["number"].startswith("SIR"), f"incident number {sir['number']!r}")
    shown = incidents.get(query={"sys_id": sir["sys_id"]}, display_value=True).one()
    check(shown["assigned_to"]["display_value"] == "Abel Tuter", f"assigned_to shows {shown['assigned_to']!r}")
    check(shown["priority"] == "2 - High", f"priority shows {shown['priority']!r}")

    # OAuth: a password-grant token reads the same incident. oauthlib refuses plain http unless
    # OAUTHLIB_INSECURE_TRANSPORT is set (its documented switch for local testing).
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    oauth = pysnow.OAuthClient(client_id=client_id, client_secret=client_secret, host=host, use_ssl=False)
    token = oauth.generate_token(user, password)
    check(token.get("access_token") and token.get("refresh_token"), f"token answer {token!r}")
    oauth.set_token(token)
    again = oauth.resource(api_path="/table/sn_si_incident").get(query={"number": sir["number"]}).one()
    check(again["sys_id"] == sir["sys_id"], "OAuth read found another incident")

    print(f"pysnow check passed: {len(ids)} observables paged in {PAGE}s, {len(hashes)} recent hashes, "
          f"{len(ce)} by Netskope's pull query; observable created, updated and deleted; "
          f"security incident {sir['number']} created; OAuth read ok")


if __name__ == "__main__":
    try:
        main()
    except Mismatch as e:
        print(f"MISMATCH: {e}", file=sys.stderr)
        sys.exit(1)
