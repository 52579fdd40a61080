//! Realistic alert data: malware alerts (files with MD5, SHA-1 and SHA-256, users, apps,
//! severities) and malsite alerts (URLs, categories, confidence), drawn from small pools so that
//! some files and sites appear in several alerts, as they do on a real tenant.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde_json::{Map, Value, json};

use super::model::AlertType;

const USERS: &[&str] = &[
    "alice.martin@example.com",
    "bob.nguyen@example.com",
    "carol.schmidt@example.com",
    "dave.okafor@example.com",
    "erin.rossi@example.com",
    "frank.tanaka@example.com",
    "grace.kowalski@example.com",
    "heidi.larsen@example.com",
    "ivan.petrov@example.com",
    "judy.fernandez@example.com",
];

const APPS: &[(&str, &str)] = &[
    ("Google Drive", "Cloud Storage"),
    ("Microsoft OneDrive for Business", "Cloud Storage"),
    ("Box", "Cloud Storage"),
    ("Dropbox", "Cloud Storage"),
    ("Slack", "Collaboration"),
    ("Microsoft Teams", "Collaboration"),
    ("Gmail", "Webmail"),
    ("WeTransfer", "Cloud Storage"),
];

const MALWARE: &[(&str, &str)] = &[
    ("Trojan.GenericKD.46527712", "Trojan"),
    ("Gen:Variant.Razy.912311", "Trojan"),
    ("Ransom.LockBit.A", "Ransomware"),
    ("Ransom.Conti.B", "Ransomware"),
    ("Backdoor.CobaltStrike.Beacon", "Backdoor"),
    ("Trojan.Emotet.Downloader", "Trojan"),
    ("Spyware.AgentTesla", "Spyware"),
    ("Worm.Phorpiex", "Worm"),
    ("Exploit.CVE-2017-11882", "Exploit"),
    ("Adware.InstallCore", "Adware"),
    ("Trojan.QakBot.Loader", "Trojan"),
    ("PUA.CoinMiner.XMRig", "PUA"),
];

const FILES: &[(&str, &str, &str)] = &[
    ("invoice_", ".pdf.exe", "PE32 executable"),
    ("Payment_Advice_", ".docm", "Microsoft Word 2007+"),
    ("shipping_label_", ".zip", "Zip archive"),
    ("setup_", ".msi", "MSI Installer"),
    ("Q3_report_", ".xlsm", "Microsoft Excel 2007+"),
    ("scan_", ".iso", "ISO 9660"),
    ("update_", ".js", "JavaScript"),
    ("resume_", ".lnk", "MS Windows shortcut"),
];

const SEVERITIES: &[(&str, i64)] = &[("low", 1), ("medium", 2), ("high", 3), ("critical", 4)];

const MALSITE_CATEGORIES: &[&str] = &[
    "Phishing",
    "Malware Distribution Point",
    "Command and Control",
    "Botnet",
    "Spam URLs",
    "Compromised Sites",
    "Newly Registered Domains",
    "Cryptojacking",
];

const DOMAIN_WORDS: &[&str] = &[
    "secure", "login", "account", "verify", "update", "office", "cloud", "docs", "portal", "pay",
    "billing", "support", "drive", "share", "auth", "mail", "service", "invoice", "delivery",
    "wallet",
];

const TLDS: &[&str] = &[
    "xyz", "top", "info", "click", "online", "site", "live", "ru", "cn", "biz", "net", "com",
];

const PATHS: &[&str] = &[
    "/",
    "/login.php",
    "/wp-admin/includes/dl.php",
    "/verify/account",
    "/invoice/download",
    "/gate.php",
    "/update/setup.exe",
    "/owa/auth/logon.aspx",
];

const COUNTRIES: &[(&str, &str)] = &[
    ("US", "California"),
    ("DE", "Hesse"),
    ("GB", "England"),
    ("FR", "Ile-de-France"),
    ("IN", "Karnataka"),
    ("JP", "Tokyo"),
    ("BR", "Sao Paulo"),
];

/// A file seen by the tenant: the same file appears in several malware alerts.
#[derive(Debug, Clone)]
pub struct FileSample {
    /// File name.
    pub name: String,
    /// `file_type` as the scanner reports it.
    pub file_type: String,
    /// Size in bytes.
    pub size: u64,
    /// MD5 (32 hex).
    pub md5: String,
    /// SHA-1 (40 hex).
    pub sha1: String,
    /// SHA-256 (64 hex).
    pub sha256: String,
    /// The signature that matched.
    pub malware_name: String,
    /// Its family type.
    pub malware_type: String,
}

/// A malicious site: the same URL appears in several malsite alerts.
#[derive(Debug, Clone)]
pub struct SiteSample {
    /// The URL as the proxy logged it.
    pub url: String,
    /// Its host.
    pub host: String,
    /// Categories (`malsite_category`).
    pub categories: Vec<String>,
    /// Confidence 0–100 (`malsite_confidence`).
    pub confidence: i64,
    /// The resolved address.
    pub ip: String,
    /// Country of the address.
    pub country: String,
}

fn hex(rng: &mut StdRng, len: usize) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    (0..len)
        .map(|_| char::from(DIGITS[rng.gen_range(0..16)]))
        .collect()
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    // The slices above are non-empty constants; fall back to the first element defensively.
    items.choose(rng).unwrap_or(&items[0])
}

fn public_ip(rng: &mut StdRng) -> String {
    // Avoid private and reserved first octets so the values look like internet hosts.
    let first = *pick(
        rng,
        &[23u8, 31, 45, 62, 77, 91, 103, 138, 146, 185, 193, 203],
    );
    format!(
        "{first}.{}.{}.{}",
        rng.gen_range(0..=255),
        rng.gen_range(0..=255),
        rng.gen_range(1..=254)
    )
}

/// A new random file sample.
pub fn file_sample(rng: &mut StdRng) -> FileSample {
    let (prefix, suffix, file_type) = *pick(rng, FILES);
    let (malware_name, malware_type) = *pick(rng, MALWARE);
    FileSample {
        name: format!("{prefix}{}{suffix}", rng.gen_range(1000..99999)),
        file_type: file_type.to_string(),
        size: rng.gen_range(8_000..12_000_000),
        md5: hex(rng, 32),
        sha1: hex(rng, 40),
        sha256: hex(rng, 64),
        malware_name: malware_name.to_string(),
        malware_type: malware_type.to_string(),
    }
}

/// A new random malicious site.
pub fn site_sample(rng: &mut StdRng) -> SiteSample {
    let a = *pick(rng, DOMAIN_WORDS);
    let b = *pick(rng, DOMAIN_WORDS);
    let tld = *pick(rng, TLDS);
    let host = if rng.gen_bool(0.3) {
        format!("{a}-{b}{}.{tld}", rng.gen_range(1..999))
    } else {
        format!("{a}{b}-{}.{tld}", hex(rng, 4))
    };
    let path = *pick(rng, PATHS);
    let scheme = if rng.gen_bool(0.8) { "https" } else { "http" };
    let mut categories = vec![pick(rng, MALSITE_CATEGORIES).to_string()];
    if rng.gen_bool(0.25) {
        let extra = pick(rng, MALSITE_CATEGORIES).to_string();
        if !categories.contains(&extra) {
            categories.push(extra);
        }
    }
    let (country, _) = *pick(rng, COUNTRIES);
    SiteSample {
        url: format!("{scheme}://{host}{path}"),
        host,
        categories,
        confidence: rng.gen_range(40..=100),
        ip: public_ip(rng),
        country: country.to_string(),
    }
}

fn common_fields(rng: &mut StdRng, map: &mut Map<String, Value>, timestamp: i64, ingest: i64) {
    let user = *pick(rng, USERS);
    let (country, region) = *pick(rng, COUNTRIES);
    let (severity, severity_id) = *pick(rng, SEVERITIES);
    map.insert("_id".into(), json!(hex(rng, 24)));
    map.insert("_insertion_epoch_timestamp".into(), json!(ingest));
    map.insert("timestamp".into(), json!(timestamp));
    map.insert("acked".into(), json!("false"));
    map.insert("alert".into(), json!("yes"));
    map.insert("count".into(), json!(1));
    map.insert("user".into(), json!(user));
    map.insert(
        "userip".into(),
        json!(format!(
            "10.{}.{}.{}",
            rng.gen_range(0..255),
            rng.gen_range(0..255),
            rng.gen_range(1..254)
        )),
    );
    map.insert("srcip".into(), json!(public_ip(rng)));
    map.insert("src_country".into(), json!(country));
    map.insert("src_region".into(), json!(region));
    map.insert(
        "os".into(),
        json!(*pick(
            rng,
            &["Windows 11", "Windows 10", "macOS 14", "Ubuntu 22.04"]
        )),
    );
    map.insert(
        "browser".into(),
        json!(*pick(
            rng,
            &["Chrome", "Edge", "Firefox", "Safari", "Native"]
        )),
    );
    map.insert(
        "device".into(),
        json!(*pick(
            rng,
            &["Windows Device", "Mac Device", "Linux Device"]
        )),
    );
    map.insert(
        "hostname".into(),
        json!(format!("LT-{}", hex(rng, 6).to_uppercase())),
    );
    map.insert("severity".into(), json!(severity));
    map.insert("severity_id".into(), json!(severity_id));
    map.insert(
        "policy".into(),
        json!(*pick(
            rng,
            &[
                "Block Malware",
                "Threat Protection - Default",
                "Alert Only - Web"
            ]
        )),
    );
    map.insert(
        "access_method".into(),
        json!(*pick(
            rng,
            &["Client", "Secure Forwarder", "Proxy Chaining"]
        )),
    );
    map.insert("traffic_type".into(), json!("CloudApp"));
    map.insert("type".into(), json!("nspolicy"));
}

/// A malware alert about `file`, seen at `timestamp` and indexed at `ingest` (epoch seconds).
pub fn malware_alert(
    rng: &mut StdRng,
    file: &FileSample,
    timestamp: i64,
    ingest: i64,
) -> Map<String, Value> {
    let mut m = Map::new();
    common_fields(rng, &mut m, timestamp, ingest);
    let (app, appcategory) = *pick(rng, APPS);
    // Now and then the file was repackaged on the way, so the locally computed hashes differ.
    let (local_md5, local_sha256) = if rng.gen_bool(0.1) {
        (hex(rng, 32), hex(rng, 64))
    } else {
        (file.md5.clone(), file.sha256.clone())
    };
    let severity = m.get("severity").cloned().unwrap_or(json!("high"));
    m.insert(
        "alert_type".into(),
        json!(AlertType::Malware.alert_type_value()),
    );
    m.insert(
        "alert_name".into(),
        json!(format!("Malware detected: {}", file.malware_name)),
    );
    m.insert(
        "action".into(),
        json!(*pick(rng, &["block", "alert", "quarantine"])),
    );
    m.insert(
        "activity".into(),
        json!(*pick(rng, &["Upload", "Download", "Share", "Sync"])),
    );
    m.insert("app".into(), json!(app));
    m.insert("appcategory".into(), json!(appcategory));
    m.insert("category".into(), json!(appcategory));
    m.insert(
        "ccl".into(),
        json!(*pick(rng, &["high", "medium", "excellent"])),
    );
    m.insert("object".into(), json!(file.name));
    m.insert("object_type".into(), json!("File"));
    m.insert("file_name".into(), json!(file.name));
    m.insert(
        "file_path".into(),
        json!(format!(
            "/Users/{}/Downloads/{}",
            m.get("user").and_then(Value::as_str).unwrap_or("user"),
            file.name
        )),
    );
    m.insert("file_size".into(), json!(file.size));
    m.insert("file_type".into(), json!(file.file_type));
    m.insert("true_filetype".into(), json!(file.file_type));
    m.insert("md5".into(), json!(file.md5));
    m.insert("sha1".into(), json!(file.sha1));
    m.insert("sha256".into(), json!(file.sha256));
    m.insert("local_md5".into(), json!(local_md5));
    m.insert("local_sha256".into(), json!(local_sha256));
    m.insert("malware_id".into(), json!(hex(rng, 32)));
    m.insert("malware_name".into(), json!(file.malware_name));
    m.insert("malware_type".into(), json!(file.malware_type));
    m.insert("malware_severity".into(), severity);
    m.insert("malware_profile".into(), json!("Default Malware Scan"));
    m.insert(
        "detection_engine".into(),
        json!(*pick(
            rng,
            &[
                "Signature Engine",
                "Advanced Heuristic Engine",
                "Cloud Sandbox",
                "ML Engine"
            ]
        )),
    );
    m.insert("scan_type".into(), json!("Real-time Scan"));
    m.insert("scan_time".into(), json!(timestamp));
    m.insert("instance_id".into(), json!("example.com"));
    m.insert("site".into(), json!(app));
    m.insert("protocol".into(), json!("HTTPS/1.1"));
    m.insert(
        "url".into(),
        json!(format!(
            "https://{}/download/{}",
            app.to_ascii_lowercase().replace(' ', ""),
            hex(rng, 12)
        )),
    );
    m
}

/// A malsite alert about `site`, seen at `timestamp` and indexed at `ingest` (epoch seconds).
pub fn malsite_alert(
    rng: &mut StdRng,
    site: &SiteSample,
    timestamp: i64,
    ingest: i64,
) -> Map<String, Value> {
    let mut m = Map::new();
    common_fields(rng, &mut m, timestamp, ingest);
    let (severity_level, severity_level_id) = match m.get("severity").and_then(Value::as_str) {
        Some("low") => ("low", 1),
        Some("medium") => ("medium", 2),
        Some("critical") => ("critical", 4),
        _ => ("high", 3),
    };
    let first_seen = timestamp - rng.gen_range(3_600..40 * 86_400);
    m.insert(
        "alert_type".into(),
        json!(AlertType::Malsite.alert_type_value()),
    );
    m.insert(
        "alert_name".into(),
        json!(format!("Malicious site: {}", site.categories.join(", "))),
    );
    m.insert("action".into(), json!(*pick(rng, &["block", "alert"])));
    m.insert("activity".into(), json!("Browse"));
    m.insert("app".into(), json!("Unknown Sites"));
    m.insert("appcategory".into(), json!("Security Risk"));
    m.insert("category".into(), json!("Security Risk"));
    m.insert("traffic_type".into(), json!("Web"));
    m.insert("url".into(), json!(site.url));
    m.insert("ur_normalized".into(), json!(site.url.to_ascii_lowercase()));
    m.insert("site".into(), json!(site.host));
    m.insert("dsthost".into(), json!(site.host));
    m.insert("dstip".into(), json!(site.ip));
    m.insert(
        "dstport".into(),
        json!(if site.url.starts_with("https") {
            443
        } else {
            80
        }),
    );
    m.insert("dst_country".into(), json!(site.country));
    m.insert("malsite_category".into(), json!(site.categories));
    m.insert("malsite_confidence".into(), json!(site.confidence));
    m.insert("malsite_id".into(), json!(hex(rng, 24)));
    m.insert("malsite_ip_host".into(), json!(site.ip));
    m.insert("malsite_country".into(), json!(site.country));
    m.insert("malsite_active".into(), json!("yes"));
    m.insert("malsite_first_seen".into(), json!(first_seen));
    m.insert("malsite_last_seen".into(), json!(timestamp));
    m.insert("malsite_hostility".into(), json!(severity_level));
    m.insert(
        "malsite_reputation".into(),
        json!(*pick(rng, &["malicious", "suspicious"])),
    );
    m.insert("malicious".into(), json!("yes"));
    m.insert("severity_level".into(), json!(severity_level));
    m.insert("severity_level_id".into(), json!(severity_level_id));
    m.insert(
        "protocol".into(),
        json!(if site.url.starts_with("https") {
            "HTTPS/1.1"
        } else {
            "HTTP/1.1"
        }),
    );
    m.insert("useragent".into(), json!("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"));
    m.insert("page".into(), json!(site.url));
    m
}

/// Pools of files and sites from which alerts are drawn, so values repeat across alerts.
#[derive(Debug, Clone, Default)]
pub struct Pools {
    /// Files seen so far.
    pub files: Vec<FileSample>,
    /// Sites seen so far.
    pub sites: Vec<SiteSample>,
}

impl Pools {
    /// A file for the next alert: usually one already seen, sometimes a new one.
    pub fn file(&mut self, rng: &mut StdRng) -> FileSample {
        if self.files.is_empty() || rng.gen_bool(0.35) {
            let f = file_sample(rng);
            self.files.push(f.clone());
            f
        } else {
            let i = rng.gen_range(0..self.files.len());
            self.files[i].clone()
        }
    }

    /// A site for the next alert: usually one already seen, sometimes a new one.
    pub fn site(&mut self, rng: &mut StdRng) -> SiteSample {
        if self.sites.is_empty() || rng.gen_bool(0.35) {
            let s = site_sample(rng);
            self.sites.push(s.clone());
            s
        } else {
            let i = rng.gen_range(0..self.sites.len());
            self.sites[i].clone()
        }
    }
}
