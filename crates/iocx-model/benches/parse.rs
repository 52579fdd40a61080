//! Micro-benchmark of the indicator parser, the hot path of bulk ingest.
//!
//! Run with `cargo bench -p iocx-model --bench parse` (add a word to run only the sets whose
//! name contains it). Prints ns per value for each kind, canonical and as feeds often write
//! them (uppercase, defanged), and for the mix the ingest target is stated for: 1/3 sha256,
//! 1/3 domains, 1/6 IPv4, 1/6 URLs. Each set is parsed in several passes and the best and
//! median pass are shown: the machine is shared, and the best pass is the one least disturbed
//! by others.

use std::hint::black_box;
use std::time::{Duration, Instant};

use iocx_model::{Kind, ParseOptions, parse};

/// Values per set.
const N: usize = 20_000;
/// Passes per set; the best and the median are reported.
const PASSES: usize = 25;

/// A small deterministic generator (xorshift64*), so every run measures the same values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16)]))
            .collect()
    }

    /// A label like the ones in real feeds: letters and digits, sometimes a hyphen.
    fn label(&mut self) -> String {
        let len = 3 + self.below(12);
        let mut s: String = (0..len)
            .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[self.below(36)]))
            .collect();
        if len > 6 && self.below(4) == 0 {
            s.insert(len / 2, '-');
        }
        s
    }
}

const TLDS: &[&str] = &[
    "com", "net", "org", "ru", "info", "xyz", "top", "io", "co.uk", "de", "cn", "online", "com.br",
    "site",
];

fn sha256s(rng: &mut Rng) -> Vec<String> {
    (0..N).map(|_| rng.hex(64)).collect()
}

fn domains(rng: &mut Rng) -> Vec<String> {
    (0..N)
        .map(|_| {
            let tld = rng.pick(TLDS);
            match rng.below(3) {
                0 => format!("{}.{tld}", rng.label()),
                1 => format!("{}.{}.{tld}", rng.label(), rng.label()),
                _ => format!("www.{}.{tld}", rng.label()),
            }
        })
        .collect()
}

fn ipv4s(rng: &mut Rng) -> Vec<String> {
    (0..N)
        .map(|_| {
            let n = rng.next();
            format!(
                "{}.{}.{}.{}",
                n & 0xff,
                (n >> 8) & 0xff,
                (n >> 16) & 0xff,
                (n >> 24) & 0xff
            )
        })
        .collect()
}

fn urls(rng: &mut Rng) -> Vec<String> {
    const FILES: &[&str] = &[
        "index.php",
        "login.html",
        "payload.exe",
        "a.js",
        "",
        "wp-admin/",
    ];
    (0..N)
        .map(|_| {
            let scheme = if rng.below(2) == 0 { "http" } else { "https" };
            let host = format!("{}.{}", rng.label(), rng.pick(TLDS));
            let file = rng.pick(FILES);
            match rng.below(3) {
                0 => format!("{scheme}://{host}/{file}"),
                1 => format!("{scheme}://{host}/{}/{file}", rng.label()),
                _ => format!("{scheme}://{host}/{}/{file}?id={}", rng.label(), rng.hex(8)),
            }
        })
        .collect()
}

/// 1/3 sha256, 1/3 domains, 1/6 IPv4, 1/6 URLs, interleaved.
fn mixed(rng: &mut Rng) -> Vec<String> {
    let (s, d, i, u) = (sha256s(rng), domains(rng), ipv4s(rng), urls(rng));
    (0..N)
        .map(|k| match k % 6 {
            0 | 1 => s[k].clone(),
            2 | 3 => d[k].clone(),
            4 => i[k].clone(),
            _ => u[k].clone(),
        })
        .collect()
}

/// The best and the median time per value over [`PASSES`] passes of parsing `values`.
fn measure(
    values: &[String],
    declared: Option<Kind>,
    options: &ParseOptions,
) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(PASSES);
    for _ in 0..PASSES {
        let start = Instant::now();
        let mut ok = 0usize;
        for v in values {
            if parse(black_box(v), declared, options).is_ok() {
                ok += 1;
            }
        }
        black_box(ok);
        times.push(start.elapsed() / values.len() as u32);
    }
    times.sort();
    (times[0], times[PASSES / 2])
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let options = ParseOptions::default();
    let sha = sha256s(&mut rng);
    let dom = domains(&mut rng);
    let ip = ipv4s(&mut rng);
    let url = urls(&mut rng);
    let mix = mixed(&mut rng);
    let upper = |v: &[String]| v.iter().map(|s| s.to_uppercase()).collect::<Vec<_>>();
    let defanged = |v: &[String]| {
        v.iter()
            .map(|s| s.replace('.', "[.]").replace("http", "hxxp"))
            .collect::<Vec<_>>()
    };
    let idn: Vec<String> = dom.iter().map(|d| format!("bücher-{d}")).collect();

    let sets: Vec<(&str, Vec<String>, Option<Kind>)> = vec![
        ("sha256", sha.clone(), None),
        ("sha256 declared", sha.clone(), Some(Kind::Sha256)),
        ("sha256 uppercase", upper(&sha), None),
        ("domain", dom.clone(), None),
        ("domain declared", dom.clone(), Some(Kind::Domain)),
        ("domain uppercase", upper(&dom), None),
        ("domain defanged", defanged(&dom), None),
        ("domain idn", idn, None),
        ("ipv4", ip.clone(), None),
        ("ipv4 declared", ip.clone(), Some(Kind::Ipv4)),
        ("ipv4 defanged", defanged(&ip), None),
        ("url", url.clone(), None),
        ("url declared", url.clone(), Some(Kind::Url)),
        ("url defanged", defanged(&url), None),
        ("mixed", mix, None),
    ];
    println!("iocx-model parse: {N} values per set, {PASSES} passes, detect unless declared");
    println!("{:<20} {:>8} {:>8}   ns per value", "set", "best", "median");
    for (name, values, declared) in sets {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let ok = values
            .iter()
            .filter(|v| parse(v, declared, &options).is_ok())
            .count();
        assert_eq!(ok, values.len(), "every value of {name} must parse");
        let (best, median) = measure(&values, declared, &options);
        println!("{name:<20} {:>8} {:>8}", best.as_nanos(), median.as_nanos());
    }
    if filter.as_deref().is_none_or(|f| "url crate".contains(f)) {
        // For reference: the same URLs through the `url` crate (WHATWG parse and
        // serialisation), the alternative to iocx's own canonicaliser.
        let mut times = Vec::with_capacity(PASSES);
        for _ in 0..PASSES {
            let start = Instant::now();
            for v in &url {
                black_box(url::Url::parse(black_box(v)).map(String::from).ok());
            }
            times.push(start.elapsed() / url.len() as u32);
        }
        times.sort();
        println!(
            "{:<20} {:>8} {:>8}",
            "url (url crate)",
            times[0].as_nanos(),
            times[PASSES / 2].as_nanos()
        );
    }
}
