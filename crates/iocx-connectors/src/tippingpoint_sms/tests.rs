//! The connector against the TippingPoint SMS emulator, over real HTTP on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use iocx_model::Kind;
use iocx_sim::common::SimHandle;
use iocx_sim::tippingpoint_sms::{self as sim, Args};
use serde_json::json;

use super::*;
use crate::testing::{self, check_outcomes, drain};

const KEY: &str = "sms-key";

async fn start() -> (SimHandle, sim::Emulator) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    sim::start(listener, &Args::new(KEY)).await.unwrap()
}

fn ctx(handle: &SimHandle, key: &str) -> Context {
    testing::context(&SPEC, json!({ "url": handle.base_url, "api_key": key })).0
}

#[test]
fn the_spec_is_consistent() {
    testing::assert_spec(&SPEC);
}

#[test]
fn alert_exports_become_hits_per_device() {
    let csv = "SEQUENCE_NUM,DEVICE_ID,END_TIME,HIT_COUNT,SEVERITY,MESSAGE_PARMS\n\
               1,dev-a,1717416001000,3,3,198.51.100.7\n\
               2,dev-a,1717416002000,2,3,198.51.100.7\n\
               3,dev-b,1717416003000,1,4,\"evil.example\"\n\
               4,dev-b,1717416004000,1,4,\n";
    let (records, rejected) = alert_records(csv);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].hits, 5);
    assert!(records[0].attributes.tags.contains("device:dev-a"));
    assert_eq!(records[1].attributes.severity, Severity::Critical);
    assert_eq!(rejected.get("no_matched_entry"), Some(&1));
}

#[tokio::test]
async fn entries_are_added_imported_hit_and_deleted() {
    let (handle, emulator) = start().await;
    let ctx = ctx(&handle, KEY);
    assert!(
        TippingPointSms
            .validate(&ctx)
            .await
            .unwrap()
            .contains("SMS")
    );
    let target = testing::target_call(&SPEC, "reputation", json!({ "scan_action": "log" }));

    // A few: single adds.
    let few = vec![
        testing::push_item(Kind::Ipv4, "198.51.100.7"),
        testing::push_item(Kind::Domain, "evil.example"),
        testing::push_item(Kind::Url, "http://evil.example/a"),
        testing::push_item(Kind::Sha256, &"f".repeat(64)),
    ];
    let out = TippingPointSms.push(&ctx, &target, &few).await.unwrap();
    check_outcomes(4, &out);
    assert_eq!(
        &out[..3],
        &[
            ItemOutcome::Shared,
            ItemOutcome::Shared,
            ItemOutcome::Shared
        ]
    );
    assert!(matches!(&out[3], ItemOutcome::Skipped(_)));
    let entry = emulator.state.find_for_value("198.51.100.7").unwrap();
    let tags = format!("{:?}", entry.tags);
    assert!(
        tags.contains("Reputation Entries TTL") && tags.contains("\"log\""),
        "{tags}"
    );

    // Many: import files.
    let many: Vec<PushItem> = (0..300)
        .map(|i| testing::push_item(Kind::Domain, &format!("m{i}.bulk.example")))
        .collect();
    let out = TippingPointSms.push(&ctx, &target, &many).await.unwrap();
    assert!(
        out.iter().all(|o| *o == ItemOutcome::Shared),
        "{:?}",
        &out[..1]
    );
    assert!(emulator.state.find_for_value("m299.bulk.example").is_some());
    assert_eq!(emulator.state.len(), 303);

    // Hits on an entry come back as sightings.
    let http = reqwest::Client::new();
    let answer = http
        .post(format!("{}/_sim/events", handle.base_url))
        .json(&json!({ "value": "198.51.100.7", "count": 4, "device": "ips-edge-02" }))
        .send()
        .await
        .unwrap();
    assert!(
        answer.status().is_success(),
        "{}",
        answer.text().await.unwrap()
    );
    // A pull's window ends (exclusively) at the millisecond it starts: hits of that very
    // millisecond belong to the next pull. Step past it.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let pulled = drain(&TippingPointSms, &ctx, None, None).await;
    assert!(pulled.finished, "{:?}", pulled.error);
    let hit = pulled
        .batches
        .iter()
        .flat_map(|b| &b.records)
        .find(|r| r.indicator.value == "198.51.100.7")
        .expect("a sighting of the hit entry");
    assert!(hit.hits >= 4, "{}", hit.hits);
    assert!(
        hit.attributes
            .tags
            .as_slice()
            .iter()
            .any(|t| t.starts_with("device:"))
    );

    let out = TippingPointSms.retract(&ctx, &target, &many).await.unwrap();
    assert!(out.iter().all(|o| *o == ItemOutcome::Shared));
    assert_eq!(emulator.state.len(), 3);

    let e = TippingPointSms
        .validate(&self::ctx(&handle, "wrong"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth, "{e}");
    handle.stop().await;
}

/// A listening pull running in its own task: its batches, its cancel switch, its log, and the
/// address it listens on.
struct Listening {
    batches: tokio::sync::mpsc::UnboundedReceiver<Result<PullBatch, ConnectorError>>,
    cancel: tokio_util::sync::CancellationToken,
    log: std::sync::Arc<testing::MemoryLog>,
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

async fn listen(protocol: &str, batch_size: u64) -> Listening {
    use futures::StreamExt as _;
    let (ctx, log) = testing::context(
        &SPEC,
        json!({
            "url": "http://127.0.0.1:9",
            "api_key": KEY,
            "syslog_listen": "127.0.0.1:0",
            "syslog_protocol": protocol,
            "syslog_batch_size": batch_size,
        }),
    );
    let cancel = ctx.cancel.clone();
    let (tx, batches) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut stream = TippingPointSms.pull(&ctx, None);
        while let Some(b) = stream.next().await {
            if tx.send(b).is_err() {
                break;
            }
        }
    });
    // The address is in the log once the sockets are bound.
    let mut addr = None;
    for _ in 0..200 {
        if let Some(line) = log
            .lines()
            .into_iter()
            .find(|(_, m)| m.starts_with("Listening for SMS syslog events"))
        {
            let at = line.1.find("127.0.0.1:").unwrap();
            let text: String = line.1[at..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            addr = Some(text.parse().unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let addr = addr.unwrap_or_else(|| panic!("the listener did not start: {}", log.text()));
    Listening {
        batches,
        cancel,
        log,
        addr,
        task,
    }
}

/// Hits per (value, device tag) over `records`.
fn hits_by_device(records: &[Record]) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for r in records {
        let device = r
            .attributes
            .tags
            .as_slice()
            .iter()
            .find(|t| t.starts_with("device:"))
            .cloned()
            .unwrap_or_default();
        *out.entry((r.indicator.value.clone(), device)).or_default() += r.hits;
    }
    out
}

/// Receives batches until `done` says the records so far are enough (or 10 s pass).
async fn collect_until(
    l: &mut Listening,
    records: &mut Vec<Record>,
    rejected: &mut BTreeMap<String, u64>,
    done: impl Fn(&[Record], &BTreeMap<String, u64>) -> bool,
) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done(records, rejected) {
        let batch = tokio::time::timeout_at(deadline, l.batches.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "timed out; got {:?} / {rejected:?}; log: {}",
                    hits_by_device(records),
                    l.log.text()
                )
            })
            .expect("the pull ended early")
            .unwrap_or_else(|e| panic!("the pull failed: {e}"));
        assert!(
            !batch.records.is_empty() || !batch.rejected.is_empty(),
            "an empty batch"
        );
        assert!(
            batch.checkpoint.get("since_ms").is_some(),
            "{}",
            batch.checkpoint
        );
        records.extend(batch.records);
        for (k, v) in batch.rejected {
            *rejected.entry(k).or_default() += v;
        }
    }
}

async fn add_entry(handle: &SimHandle, param: &str, value: &str) {
    let answer = reqwest::Client::new()
        .get(format!("{}/repEntries/add", handle.base_url))
        .header("X-SMS-API-KEY", KEY)
        .query(&[(param, value)])
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
}

async fn emit(handle: &SimHandle, body: Value) {
    let answer = reqwest::Client::new()
        .post(format!("{}/_sim/events", handle.base_url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        answer.status().is_success(),
        "{}",
        answer.text().await.unwrap()
    );
}

#[tokio::test]
async fn syslog_hits_over_udp_and_tcp_become_sightings_per_device() {
    let mut l = listen("both", 500).await;

    // One emulator sends over UDP, another over TCP with octet counting.
    let mut udp_args = Args::new(KEY);
    udp_args.syslog_udp = Some(l.addr);
    let mut tcp_args = Args::new(KEY);
    tcp_args.syslog_tcp = Some(l.addr);
    tcp_args.syslog_tcp_framing = sim::TcpFraming::OctetCounting;
    tcp_args.syslog_without_host = true;
    let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
    let (udp_sms, _) = sim::start(bind().await.unwrap(), &udp_args).await.unwrap();
    let (tcp_sms, _) = sim::start(bind().await.unwrap(), &tcp_args).await.unwrap();
    add_entry(&udp_sms, "ip", "198.51.100.7").await;
    add_entry(&tcp_sms, "dns", "evil.example").await;
    add_entry(&tcp_sms, "url", "http://bad.example/x").await;

    emit(
        &udp_sms,
        json!({"value": "198.51.100.7", "count": 3, "device": "ips-edge-01"}),
    )
    .await;
    emit(
        &udp_sms,
        json!({"value": "198.51.100.7", "count": 1, "hits": 4, "device": "ips-edge-02"}),
    )
    .await;
    emit(
        &tcp_sms,
        json!({"value": "www.evil.example", "count": 2, "device": "ips-core-01"}),
    )
    .await;
    emit(&tcp_sms, json!({"value": "http://bad.example/x", "count": 1, "device": "ips-edge-01", "severity": 4})).await;

    // Garbage, by hand: a UDP datagram and a newline-framed TCP line.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.send_to(b"<13>Jun  3 12:00:01 host this is not CEF", l.addr)
        .await
        .unwrap();
    let udp_peer = udp.local_addr().unwrap();
    let mut tcp = tokio::net::TcpStream::connect(l.addr).await.unwrap();
    let tcp_peer = tcp.local_addr().unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut tcp,
        b"CEF:0|TippingPoint|UnityOne|1|7610\n\
          CEF:0|TippingPoint|UnityOne|1|1234|HTTP: exploit|8|cat=Exploits dvchost=ips-edge-01\n\
          <13>Jun  3 12:00:01 sms CEF:0|TippingPoint|UnityOne|1|7610|f|2|cat=Reputation cs6=203.0.113.5 cs6Label=Filter Message Parms dvchost=ips-hand-01 cnt=7\n",
    )
    .await
    .unwrap();

    let mut records = Vec::new();
    let mut rejected = BTreeMap::new();
    collect_until(&mut l, &mut records, &mut rejected, |r, rej| {
        let h = hits_by_device(r);
        h.values().sum::<u64>() >= 3 + 4 + 2 + 1 + 7 && rej.get("malformed_cef") == Some(&2)
    })
    .await;
    let hits = hits_by_device(&records);
    let get = |v: &str, d: &str| hits.get(&(v.to_string(), format!("device:{d}"))).copied();
    assert_eq!(get("198.51.100.7", "ips-edge-01"), Some(3), "{hits:?}");
    assert_eq!(get("198.51.100.7", "ips-edge-02"), Some(4), "{hits:?}");
    assert_eq!(get("www.evil.example", "ips-core-01"), Some(2), "{hits:?}");
    assert_eq!(
        get("http://bad.example/x", "ips-edge-01"),
        Some(1),
        "{hits:?}"
    );
    assert_eq!(get("203.0.113.5", "ips-hand-01"), Some(7), "{hits:?}");
    let url = records
        .iter()
        .find(|r| r.indicator.value == "http://bad.example/x")
        .unwrap();
    assert_eq!(url.attributes.severity, Severity::Critical);
    assert!(url.last_seen.is_some());
    assert!(url.attributes.tags.contains("action:block"));
    // Malformed lines are logged with their sender; other events are only counted.
    let text = l.log.text();
    assert!(text.contains(&udp_peer.to_string()), "{text}");
    assert!(text.contains(&tcp_peer.to_string()), "{text}");
    assert!(text.contains("no \"CEF:\" marker"), "{text}");
    assert!(
        text.contains("the CEF header has 5 of its 7 fields"),
        "{text}"
    );
    assert_eq!(
        rejected.get("not_a_reputation_hit"),
        Some(&1),
        "{rejected:?}"
    );

    // Stopping ends the stream; what was received before is committed as a last batch.
    emit(
        &udp_sms,
        json!({"value": "198.51.100.7", "count": 5, "device": "ips-edge-09"}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    l.cancel.cancel();
    let mut last = Vec::new();
    while let Some(b) = l.batches.recv().await {
        last.extend(b.unwrap().records);
    }
    assert_eq!(
        hits_by_device(&last).get(&("198.51.100.7".to_string(), "device:ips-edge-09".to_string())),
        Some(&5),
        "{:?}",
        hits_by_device(&last)
    );
    l.task.await.unwrap();
    udp_sms.stop().await;
    tcp_sms.stop().await;
}

#[tokio::test]
async fn a_full_batch_is_committed_before_the_second_is_up() {
    let mut l = listen("udp", 3).await;
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..7 {
        let line = format!(
            "CEF:0|TippingPoint|UnityOne|1|7611|f|3|cat=Reputation cs6=d{i}.example dvchost=ips-1"
        );
        udp.send_to(line.as_bytes(), l.addr).await.unwrap();
    }
    // The first batch holds exactly the batch size; the rest follow within the flush second.
    let first = l.batches.recv().await.unwrap().unwrap();
    assert_eq!(first.records.len(), 3);
    let mut records = first.records;
    let mut rejected = BTreeMap::new();
    collect_until(&mut l, &mut records, &mut rejected, |r, _| r.len() >= 7).await;
    assert_eq!(records.len(), 7);
    l.cancel.cancel();
    assert!(l.batches.recv().await.is_none());
    l.task.await.unwrap();
}

#[tokio::test]
async fn a_listen_address_that_is_taken_fails_the_pull() {
    let taken = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (ctx, _) = testing::context(
        &SPEC,
        json!({
            "url": "http://127.0.0.1:9",
            "api_key": KEY,
            "syslog_listen": taken.local_addr().unwrap().to_string(),
            "syslog_protocol": "udp",
        }),
    );
    let pulled = drain(&TippingPointSms, &ctx, None, None).await;
    let e = pulled.error.expect("an error");
    assert_eq!(e.kind, ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("cannot listen"), "{e}");
    let (handle, _) = start().await;
    let (ctx, _) = testing::context(
        &SPEC,
        json!({ "url": handle.base_url, "api_key": KEY, "syslog_listen": "not an address" }),
    );
    let e = TippingPointSms.validate(&ctx).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("not an address and port"), "{e}");
    let e = drain(&TippingPointSms, &ctx, None, None)
        .await
        .error
        .unwrap();
    assert!(e.to_string().contains("syslog_listen"), "{e}");
}
