use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::*;

struct Fixed {
    generation: AtomicU64,
    builds: AtomicUsize,
    entries: std::sync::Mutex<Vec<EdlEntry>>,
}

#[async_trait::async_trait]
impl EdlSource for Fixed {
    async fn list(&self, name: &str) -> Option<EdlList> {
        (name == "panos").then(|| EdlList {
            name: name.to_owned(),
            kinds: vec![Kind::Url, Kind::Domain],
            capacity: 2,
            strip_url_scheme: true,
        })
    }
    async fn generation(&self, _name: &str) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
    async fn entries(&self, _list: &EdlList) -> Result<Vec<EdlEntry>, String> {
        self.builds.fetch_add(1, Ordering::SeqCst);
        Ok(self.entries.lock().map_err(|e| e.to_string())?.clone())
    }
}

use iocx_model::Kind;

fn entry(kind: Kind, value: &str, priority: i64) -> EdlEntry {
    EdlEntry {
        kind,
        value: value.to_owned(),
        priority,
    }
}

#[test]
fn render_filters_orders_caps_and_strips() {
    let list = EdlList {
        name: "l".into(),
        kinds: vec![Kind::Url, Kind::Domain],
        capacity: 2,
        strip_url_scheme: true,
    };
    let r = render(
        &list,
        vec![
            entry(Kind::Ipv4, "192.0.2.1", 100),
            entry(Kind::Domain, "low.example", 1),
            entry(Kind::Url, "HTTPS://evil.example/a", 9),
            entry(Kind::Domain, "mid.example", 5),
        ],
    );
    assert_eq!(&r.body[..], b"evil.example/a\nmid.example\n");
    assert_eq!((r.count, r.dropped), (2, 1));
    assert!(r.etag.starts_with('"') && r.etag.len() == 34, "{}", r.etag);
}

#[test]
fn if_none_match_forms() {
    assert!(etag_matches("\"a\"", "\"a\""));
    assert!(etag_matches("W/\"a\", \"b\"", "\"a\""));
    assert!(etag_matches("*", "\"a\""));
    assert!(!etag_matches("\"b\"", "\"a\""));
}

#[tokio::test]
async fn conditional_get_over_http() -> Result<(), Box<dyn std::error::Error>> {
    let source = Arc::new(Fixed {
        generation: AtomicU64::new(1),
        builds: AtomicUsize::new(0),
        entries: std::sync::Mutex::new(vec![
            entry(Kind::Url, "http://a.example/x", 3),
            entry(Kind::Domain, "b.example", 2),
        ]),
    });
    let state = EdlState::new(source.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(axum::serve(listener, router(state)).into_future());
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/edl/panos.txt");

    let first = client.get(&url).send().await?;
    assert_eq!(first.status(), 200);
    let etag = first.headers()[header::ETAG].to_str()?.to_owned();
    assert_eq!(first.text().await?, "a.example/x\nb.example\n");

    let again = client
        .get(&url)
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await?;
    assert_eq!(again.status(), 304);
    assert_eq!(again.text().await?, "");
    assert_eq!(source.builds.load(Ordering::SeqCst), 1, "served from cache");

    // A change in the source regenerates the list and its ETag.
    source
        .entries
        .lock()
        .map_err(|e| e.to_string())?
        .push(entry(Kind::Domain, "c.example", 10));
    source.generation.store(2, Ordering::SeqCst);
    // Served from the cache while the rebuild runs in the background, then the new list.
    let mut changed = None;
    for _ in 0..100 {
        let r = client
            .get(&url)
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await?;
        if r.status() == 200 {
            changed = Some(r);
            break;
        }
        assert_eq!(r.status(), 304, "the stale list until the rebuild lands");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let changed = changed.ok_or("the list was never rebuilt")?;
    assert_ne!(changed.headers()[header::ETAG].to_str()?, etag);
    assert_eq!(changed.text().await?, "c.example\na.example/x\n");
    assert_eq!(source.builds.load(Ordering::SeqCst), 2);

    let missing = client
        .get(format!("http://{addr}/edl/nope.txt"))
        .send()
        .await?;
    assert_eq!(missing.status(), 404);
    server.abort();
    Ok(())
}
