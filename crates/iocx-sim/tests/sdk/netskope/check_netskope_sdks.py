"""Netskope's Python SDKs against the iocx Netskope emulator.

Usage: check_netskope_sdks.py BASE_URL V2_TOKEN CA_PEM

BASE_URL is https://127.0.0.1:PORT (the emulator started with --tls); CA_PEM is its self-signed
certificate. REQUESTS_CA_BUNDLE must point at CA_PEM too, so that `netskopesdk`, which always
builds https://<TENANT_HOSTNAME>, can be used without any change.

1. netskopesdk (netskope_api.iterator, the iterator client Cloud Exchange bundles): head,
   resend, next until caught up, tail, a newly injected alert, and an epoch download.
2. netskope-py-sdk (`netskope.NetskopeClient`): it accepts only *.goskope.com-style tenants over
   https, so its shared httpx client is swapped for one aimed at the emulator (the hook the
   contract names); then URL lists are listed with its limit/offset pagination and read by id,
   also through injected 429s that its retry logic must ride out.

Prints "netskope SDK check passed" at the end; any mismatch raises.
"""

import sys

import httpx
from netskope_api.iterator.const import Const
from netskope_api.iterator.netskope_iterator import NetskopeIterator

BASE, TOKEN, CA = sys.argv[1], sys.argv[2], sys.argv[3]
HOST = BASE.split("://", 1)[1]

admin = httpx.Client(base_url=BASE, verify=CA, timeout=30)


def sim_state():
    r = admin.get("/_sim/state")
    r.raise_for_status()
    return r.json()


def ids(resp):
    assert resp.status_code == 200, (resp.status_code, resp.text)
    body = resp.json()
    assert body["ok"] == 1, body
    assert isinstance(body["wait_time"], int), body
    assert isinstance(body["timestamp_hwm"], int), body
    return [a["_id"] for a in body["result"]]


# ---------------------------------------------------------------- 1. netskopesdk iterator
it = NetskopeIterator(
    {
        Const.NSKP_TOKEN: TOKEN,
        Const.NSKP_TENANT_HOSTNAME: HOST,
        Const.NSKP_ITERATOR_NAME: "sdk_check_malware",
        Const.NSKP_EVENT_TYPE: Const.EVENT_TYPE_ALERT,
        Const.NSKP_ALERT_TYPE: Const.ALERT_TYPE_MALWARE,
    }
)
first = it.head()
assert first.headers.get("Content-Encoding") == "gzip", first.headers
assert "ratelimit-remaining" in first.headers, first.headers
page1 = ids(first)
assert page1, "head returned alerts"
for alert in first.json()["result"]:
    assert alert["alert_type"].lower() == "malware"
    assert len(alert["md5"]) == 32 and len(alert["sha256"]) == 64
assert ids(it.resend()) == page1, "resend repeats the last page"

seen = list(page1)
for _ in range(1000):
    resp = it.next()
    got = ids(resp)
    seen.extend(got)
    if resp.json()["wait_time"] > 0:
        break
total = sim_state()["alerts"]["malware"]
assert len(seen) == total, (len(seen), total)
assert len(set(seen)) == len(seen), "no alert twice"

assert ids(it.tail()) == []
created = admin.post(
    "/_sim/alerts",
    json={"alert_type": "malware", "md5": "44d88612fea8a8f36de82e1278abb02f"},
)
assert created.status_code == 201, created.text
new = it.next().json()["result"]
assert [a["md5"] for a in new] == ["44d88612fea8a8f36de82e1278abb02f"], new

epoch_it = NetskopeIterator(
    {
        Const.NSKP_TOKEN: TOKEN,
        Const.NSKP_TENANT_HOSTNAME: HOST,
        Const.NSKP_ITERATOR_NAME: "sdk_check_epoch",
        Const.NSKP_EVENT_TYPE: Const.EVENT_TYPE_ALERT,
        Const.NSKP_ALERT_TYPE: Const.ALERT_TYPE_MALSITE,
    }
)
start = new[0]["_insertion_epoch_timestamp"] - 7 * 86400
resp = epoch_it.download(start)
for alert in resp.json()["result"]:
    assert start <= alert["_insertion_epoch_timestamp"] < start + 3600
    assert alert["alert_type"] == "malsite" and alert["url"]
print(f"netskopesdk: {len(seen)} malware alerts paged, resend/tail/epoch ok")

# ---------------------------------------------------------------- 2. netskope-py-sdk
from netskope import NetskopeClient  # noqa: E402

raw = httpx.Client(base_url=BASE, verify=CA, headers={"Netskope-Api-Token": TOKEN})
names = []
for i in range(5):
    name = f"sdk-check-{i}"
    r = raw.post(
        "/api/v2/policy/urllist",
        json={"name": name, "data": {"urls": [f"bad{i}.example.com"], "type": "exact"}},
    )
    assert r.status_code == 200, r.text
    names.append(name)

client = NetskopeClient(tenant="sdk-check.goskope.com", api_token=TOKEN)
client._transport._client = httpx.Client(
    base_url=BASE, verify=CA, headers=client._transport._client.headers
)
lists = list(client.url_lists.list(page_size=2))
assert [l.name for l in lists] == names, [l.name for l in lists]
assert lists[0].urls == ["bad0.example.com"] and lists[0].type == "exact", lists[0]
one = client.url_lists.get(lists[3].id)
assert one.urls == ["bad3.example.com"], one

r = admin.put("/_sim/faults", json={"rate_limit_every": 2, "retry_after_secs": 1})
assert r.status_code == 204
lists = list(client.url_lists.list(page_size=2))
assert [l.name for l in lists] == names, "pagination survives injected 429s"
admin.put("/_sim/faults", json={})
print(f"netskope-py-sdk: {len(lists)} URL lists paged, get by id, 429 retries ok")

print("netskope SDK check passed")
