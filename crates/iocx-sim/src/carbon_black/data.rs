//! What the emulator holds: the organisation's feeds and their reports, the public feeds,
//! watchlists and watchlist reports, and alerts; with the feed limits and the seed data behind
//! `--feeds` and `--alerts`.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};
use rand::distributions::Alphanumeric;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Value, json};

use super::alerts::{self, Alert, Search, SearchLimits, SearchPage};
use super::model::{
    Access, Classifier, FeedInfo, FeedInfoInput, IocCounting, IocV2, MatchType, Report, Watchlist,
    WatchlistInput, feed_json,
};

/// The settings the state needs (taken from `Args`).
#[derive(Debug, Clone)]
pub struct Config {
    /// The organisation key.
    pub org_key: String,
    /// Most reports one feed holds.
    pub max_reports_per_feed: usize,
    /// Most IOCs one report holds.
    pub max_iocs_per_report: usize,
    /// What the IOC limit counts.
    pub ioc_counting: IocCounting,
    /// The alert search window.
    pub search: SearchLimits,
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 404: the named thing does not exist.
    NotFound(String),
    /// 403: the key may not change it.
    Forbidden(String),
    /// 400: the body is wrong.
    Invalid(String),
}

struct StoredFeed {
    info: FeedInfo,
    reports: Vec<Report>,
}

struct Inner {
    feeds: BTreeMap<String, StoredFeed>,
    watchlists: BTreeMap<String, Watchlist>,
    watchlist_reports: BTreeMap<String, Report>,
    /// Sorted by `backend_ms`, then id.
    alerts: Vec<Alert>,
    rng: StdRng,
}

impl Inner {
    fn new_id(&mut self) -> String {
        (&mut self.rng)
            .sample_iter(Alphanumeric)
            .take(22)
            .map(char::from)
            .collect()
    }

    fn add_alerts(&mut self, new: Vec<Alert>) {
        self.alerts.extend(new);
        self.alerts
            .sort_by(|a, b| (a.backend_ms, &a.id).cmp(&(b.backend_ms, &b.id)));
    }
}

/// The organisation's data.
pub struct State {
    config: Config,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl State {
    /// Empty state (plus the public feeds every organisation sees).
    pub fn new(config: Config, seed: u64) -> State {
        let state = State {
            config,
            inner: Mutex::new(Inner {
                feeds: BTreeMap::new(),
                watchlists: BTreeMap::new(),
                watchlist_reports: BTreeMap::new(),
                alerts: Vec::new(),
                rng: StdRng::seed_from_u64(seed),
            }),
        };
        state.add_public_feeds(Utc::now());
        state
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Checks a full report set against the feed limits and for duplicate IDs.
    ///
    /// # Errors
    /// [`Refusal::Invalid`] with the limit's message.
    pub fn check_reports(&self, reports: &[Report]) -> Result<(), Refusal> {
        if reports.len() > self.config.max_reports_per_feed {
            return Err(Refusal::Invalid(format!(
                "A feed may hold at most {} reports; the request has {}.",
                self.config.max_reports_per_feed,
                reports.len()
            )));
        }
        let mut seen = HashSet::new();
        for (i, r) in reports.iter().enumerate() {
            if !seen.insert(r.id.as_str()) {
                return Err(Refusal::Invalid(format!(
                    "reports[{i}].id: duplicate report id {:?}",
                    r.id
                )));
            }
            self.check_report(r, &format!("reports[{i}]"))?;
        }
        Ok(())
    }

    fn check_report(&self, report: &Report, path: &str) -> Result<(), Refusal> {
        let n = report.ioc_count(self.config.ioc_counting);
        if n > self.config.max_iocs_per_report {
            let what = match self.config.ioc_counting {
                IocCounting::Values => "IOC values",
                IocCounting::Entries => "IOCs",
            };
            return Err(Refusal::Invalid(format!(
                "{path}: report {:?} holds {n} {what}; a report may hold at most {}.",
                report.id, self.config.max_iocs_per_report
            )));
        }
        Ok(())
    }

    /// The feeds the organisation owns, plus the public ones when `include_public`.
    pub fn list_feeds(&self, include_public: bool) -> Vec<FeedInfo> {
        self.lock()
            .feeds
            .values()
            .filter(|f| include_public || f.info.access != Access::Public)
            .map(|f| f.info.clone())
            .collect()
    }

    /// Creates a feed with its reports.
    ///
    /// # Errors
    /// [`Refusal::Invalid`] when the reports break a limit; [`Refusal::Forbidden`] for public or
    /// reserved feeds, which only Carbon Black or an MSSP may create.
    pub fn create_feed(
        &self,
        input: FeedInfoInput,
        reports: Vec<Report>,
        public_path: bool,
    ) -> Result<FeedInfo, Refusal> {
        let access = if public_path {
            Access::Public
        } else {
            input.access.unwrap_or(Access::Private)
        };
        if access != Access::Private {
            return Err(Refusal::Forbidden(format!(
                "Only Carbon Black may create {} feeds.",
                match access {
                    Access::Public => "public",
                    _ => "reserved",
                }
            )));
        }
        self.check_reports(&reports)?;
        let mut inner = self.lock();
        let id = inner.new_id();
        let info = FeedInfo {
            id: id.clone(),
            name: input.name,
            owner: input.owner.unwrap_or_else(|| self.config.org_key.clone()),
            provider_url: input.provider_url,
            summary: input.summary,
            category: input.category,
            source_label: input.source_label,
            access,
            alertable: input.alertable.unwrap_or(true),
        };
        inner.feeds.insert(
            id,
            StoredFeed {
                info: info.clone(),
                reports,
            },
        );
        Ok(info)
    }

    /// A feed with its reports.
    pub fn get_feed(&self, id: &str) -> Option<Value> {
        self.lock()
            .feeds
            .get(id)
            .map(|f| feed_json(&f.info, &f.reports))
    }

    /// Deletes an owned feed.
    ///
    /// # Errors
    /// [`Refusal::NotFound`] or, for a public feed, [`Refusal::Forbidden`].
    pub fn delete_feed(&self, id: &str) -> Result<(), Refusal> {
        let mut inner = self.lock();
        match inner.feeds.get(id) {
            None => Err(feed_not_found(id)),
            Some(f) if f.info.access == Access::Public => Err(public_feed()),
            Some(_) => {
                inner.feeds.remove(id);
                Ok(())
            }
        }
    }

    /// Replaces a feed's metadata (its ID and access stay).
    ///
    /// # Errors
    /// [`Refusal::NotFound`] or, for a public feed, [`Refusal::Forbidden`].
    pub fn update_feedinfo(&self, id: &str, input: FeedInfoInput) -> Result<FeedInfo, Refusal> {
        let mut inner = self.lock();
        let feed = owned_feed(&mut inner, id)?;
        let info = &mut feed.info;
        info.name = input.name;
        if let Some(owner) = input.owner {
            info.owner = owner;
        }
        info.provider_url = input.provider_url;
        info.summary = input.summary;
        info.category = input.category;
        info.source_label = input.source_label;
        if let Some(a) = input.alertable {
            info.alertable = a;
        }
        Ok(info.clone())
    }

    /// A feed's reports.
    ///
    /// # Errors
    /// [`Refusal::NotFound`].
    pub fn feed_reports(&self, id: &str) -> Result<Vec<Report>, Refusal> {
        self.lock()
            .feeds
            .get(id)
            .map(|f| f.reports.clone())
            .ok_or_else(|| feed_not_found(id))
    }

    /// Replaces all of a feed's reports with `reports` (full state: reports not sent are gone).
    ///
    /// # Errors
    /// [`Refusal::NotFound`], [`Refusal::Forbidden`] for a public feed, or
    /// [`Refusal::Invalid`] when a limit is broken (nothing changes then).
    pub fn replace_reports(&self, id: &str, reports: Vec<Report>) -> Result<(), Refusal> {
        self.check_reports(&reports)?;
        let mut inner = self.lock();
        owned_feed(&mut inner, id)?.reports = reports;
        Ok(())
    }

    /// Replaces one report of a feed.
    ///
    /// # Errors
    /// [`Refusal::NotFound`] for the feed or the report, [`Refusal::Forbidden`] for a public
    /// feed, [`Refusal::Invalid`] when the report breaks the IOC limit.
    pub fn put_report(&self, feed_id: &str, report: Report) -> Result<Report, Refusal> {
        self.check_report(&report, "report")?;
        let mut inner = self.lock();
        let feed = owned_feed(&mut inner, feed_id)?;
        let slot = feed
            .reports
            .iter_mut()
            .find(|r| r.id == report.id)
            .ok_or_else(|| report_not_found(&report.id))?;
        *slot = report.clone();
        Ok(report)
    }

    /// Deletes one report of a feed.
    ///
    /// # Errors
    /// [`Refusal::NotFound`] or [`Refusal::Forbidden`] for a public feed.
    pub fn delete_report(&self, feed_id: &str, report_id: &str) -> Result<(), Refusal> {
        let mut inner = self.lock();
        let feed = owned_feed(&mut inner, feed_id)?;
        let before = feed.reports.len();
        feed.reports.retain(|r| r.id != report_id);
        if feed.reports.len() == before {
            return Err(report_not_found(report_id));
        }
        Ok(())
    }

    /// Every watchlist.
    pub fn list_watchlists(&self) -> Vec<Watchlist> {
        self.lock().watchlists.values().cloned().collect()
    }

    fn check_watchlist(inner: &Inner, input: &WatchlistInput) -> Result<(), Refusal> {
        if let Some(Classifier { value, .. }) = &input.classifier
            && !inner.feeds.contains_key(value)
        {
            return Err(Refusal::Invalid(format!(
                "watchlist.classifier.value: no feed has id {value:?}"
            )));
        }
        if let Some(missing) = input
            .report_ids
            .iter()
            .find(|id| !inner.watchlist_reports.contains_key(*id))
        {
            return Err(Refusal::Invalid(format!(
                "watchlist.report_ids: no watchlist report has id {missing:?}"
            )));
        }
        Ok(())
    }

    /// Creates a watchlist.
    ///
    /// # Errors
    /// [`Refusal::Invalid`] when its classifier names no feed or a report ID is unknown.
    pub fn create_watchlist(
        &self,
        input: WatchlistInput,
        now: DateTime<Utc>,
    ) -> Result<Watchlist, Refusal> {
        let mut inner = self.lock();
        Self::check_watchlist(&inner, &input)?;
        let id = inner.new_id();
        let w = Watchlist {
            id: id.clone(),
            name: input.name,
            description: input.description,
            tags_enabled: input.tags_enabled,
            alerts_enabled: input.alerts_enabled,
            create_timestamp: now.timestamp(),
            last_update_timestamp: now.timestamp(),
            report_ids: input.report_ids,
            classifier: input.classifier,
        };
        inner.watchlists.insert(id, w.clone());
        Ok(w)
    }

    /// One watchlist.
    pub fn get_watchlist(&self, id: &str) -> Option<Watchlist> {
        self.lock().watchlists.get(id).cloned()
    }

    /// Replaces a watchlist's fields.
    ///
    /// # Errors
    /// [`Refusal::NotFound`], or [`Refusal::Invalid`] as for a create.
    pub fn update_watchlist(
        &self,
        id: &str,
        input: WatchlistInput,
        now: DateTime<Utc>,
    ) -> Result<Watchlist, Refusal> {
        let mut inner = self.lock();
        Self::check_watchlist(&inner, &input)?;
        let w = inner
            .watchlists
            .get_mut(id)
            .ok_or_else(|| watchlist_not_found(id))?;
        w.name = input.name;
        w.description = input.description;
        w.tags_enabled = input.tags_enabled;
        w.alerts_enabled = input.alerts_enabled;
        w.report_ids = input.report_ids;
        w.classifier = input.classifier;
        w.last_update_timestamp = now.timestamp();
        Ok(w.clone())
    }

    /// Deletes a watchlist.
    ///
    /// # Errors
    /// [`Refusal::NotFound`].
    pub fn delete_watchlist(&self, id: &str) -> Result<(), Refusal> {
        self.lock()
            .watchlists
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| watchlist_not_found(id))
    }

    /// Switches a watchlist's alerts (`alert`) or tags (`tag`).
    ///
    /// # Errors
    /// [`Refusal::NotFound`].
    pub fn set_watchlist_flag(&self, id: &str, alerts: bool, on: bool) -> Result<(), Refusal> {
        let mut inner = self.lock();
        let w = inner
            .watchlists
            .get_mut(id)
            .ok_or_else(|| watchlist_not_found(id))?;
        if alerts {
            w.alerts_enabled = on;
        } else {
            w.tags_enabled = on;
        }
        Ok(())
    }

    /// Adds a watchlist report; a report without an ID gets one.
    ///
    /// # Errors
    /// [`Refusal::Invalid`] when it breaks the IOC limit or its ID is taken.
    pub fn create_watchlist_report(&self, report: Report) -> Result<Report, Refusal> {
        self.check_report(&report, "report")?;
        let mut inner = self.lock();
        if inner.watchlist_reports.contains_key(&report.id) {
            return Err(Refusal::Invalid(format!(
                "report.id: a watchlist report with id {:?} already exists",
                report.id
            )));
        }
        inner
            .watchlist_reports
            .insert(report.id.clone(), report.clone());
        Ok(report)
    }

    /// A fresh random ID, for reports that come without one.
    pub fn new_id(&self) -> String {
        self.lock().new_id()
    }

    /// One watchlist report.
    pub fn get_watchlist_report(&self, id: &str) -> Option<Report> {
        self.lock().watchlist_reports.get(id).cloned()
    }

    /// Replaces a watchlist report.
    ///
    /// # Errors
    /// [`Refusal::NotFound`] or [`Refusal::Invalid`] (IOC limit).
    pub fn update_watchlist_report(&self, report: Report) -> Result<Report, Refusal> {
        self.check_report(&report, "report")?;
        let mut inner = self.lock();
        let slot = inner
            .watchlist_reports
            .get_mut(&report.id)
            .ok_or_else(|| report_not_found(&report.id))?;
        *slot = report.clone();
        Ok(report)
    }

    /// Deletes a watchlist report (and its ID from every watchlist).
    ///
    /// # Errors
    /// [`Refusal::NotFound`].
    pub fn delete_watchlist_report(&self, id: &str) -> Result<(), Refusal> {
        let mut inner = self.lock();
        inner
            .watchlist_reports
            .remove(id)
            .ok_or_else(|| report_not_found(id))?;
        for w in inner.watchlists.values_mut() {
            w.report_ids.retain(|r| r != id);
        }
        Ok(())
    }

    /// Runs an alert search.
    pub fn search_alerts(&self, search: &Search) -> SearchPage {
        alerts::run(&self.lock().alerts, search, self.config.search)
    }

    /// Adds alerts given as JSON objects (missing fields are generated).
    ///
    /// # Errors
    /// A message when an item is not an object or a timestamp is unreadable; nothing is added.
    pub fn add_alerts_json(&self, items: &[Value], now: DateTime<Utc>) -> Result<usize, String> {
        let mut inner = self.lock();
        let org = self.config.org_key.clone();
        let alerts = items
            .iter()
            .map(|v| alerts::from_json(&mut inner.rng, &org, v, now))
            .collect::<Result<Vec<_>, _>>()?;
        let n = alerts.len();
        inner.add_alerts(alerts);
        Ok(n)
    }

    /// How many alerts are held.
    pub fn alert_count(&self) -> usize {
        self.lock().alerts.len()
    }

    /// Everything held, in wire form (alerts as a count).
    pub fn snapshot(&self) -> Value {
        let inner = self.lock();
        let feeds: Vec<Value> = inner
            .feeds
            .values()
            .filter(|f| f.info.access != Access::Public)
            .map(|f| feed_json(&f.info, &f.reports))
            .collect();
        let public: Vec<&FeedInfo> = inner
            .feeds
            .values()
            .filter(|f| f.info.access == Access::Public)
            .map(|f| &f.info)
            .collect();
        json!({
            "org_key": self.config.org_key,
            "feeds": feeds,
            "public_feeds": public,
            "watchlists": inner.watchlists.values().collect::<Vec<_>>(),
            "watchlist_reports": inner.watchlist_reports.values().collect::<Vec<_>>(),
            "alerts": inner.alerts.len(),
        })
    }

    /// Forgets the organisation's feeds, watchlists, watchlist reports and alerts (the public
    /// feeds stay).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.feeds.retain(|_, f| f.info.access == Access::Public);
        inner.watchlists.clear();
        inner.watchlist_reports.clear();
        inner.alerts.clear();
    }

    fn add_public_feeds(&self, now: DateTime<Utc>) {
        let mut inner = self.lock();
        for (name, summary, category) in PUBLIC_FEEDS {
            let id = inner.new_id();
            let reports = (0..3)
                .map(|n| {
                    let rid = format!("{id}-{n}");
                    let values = (0..3).map(|_| hex(&mut inner.rng, 64)).collect();
                    sample_report(rid, now, n, values, "process_sha256")
                })
                .collect();
            let info = FeedInfo {
                id: id.clone(),
                name: (*name).to_string(),
                owner: "cbc-threat-intel".to_string(),
                provider_url: "https://www.carbonblack.com/".to_string(),
                summary: (*summary).to_string(),
                category: (*category).to_string(),
                source_label: None,
                access: Access::Public,
                alertable: true,
            };
            inner.feeds.insert(id, StoredFeed { info, reports });
        }
    }

    /// Pre-fills `feeds` private feeds of `reports_per_feed` reports each, and `alerts` alerts
    /// spread over the last seven days.
    pub fn seed(&self, feeds: usize, reports_per_feed: usize, alerts: usize, now: DateTime<Utc>) {
        let mut inner = self.lock();
        for f in 0..feeds {
            let id = inner.new_id();
            let mut reports = Vec::with_capacity(reports_per_feed);
            for n in 0..reports_per_feed {
                let (field, values): (&str, Vec<String>) = match n % 4 {
                    0 => (
                        "process_sha256",
                        (0..5).map(|_| hex(&mut inner.rng, 64)).collect(),
                    ),
                    1 => (
                        "process_md5",
                        (0..5).map(|_| hex(&mut inner.rng, 32)).collect(),
                    ),
                    2 => (
                        "netconn_ipv4",
                        (0..5)
                            .map(|_| format!("203.0.113.{}", inner.rng.gen_range(1..255)))
                            .collect(),
                    ),
                    _ => (
                        "netconn_domain",
                        (0..5)
                            .map(|i| format!("c2-{f}-{n}-{i}.example.net"))
                            .collect(),
                    ),
                };
                let rid = format!("iocx-seed-{f}-{n}");
                reports.push(sample_report(rid, now, n, values, field));
            }
            let info = FeedInfo {
                id: id.clone(),
                name: format!("Threat Intel Feed {}", f + 1),
                owner: self.config.org_key.clone(),
                provider_url: "https://intel.example.com/".to_string(),
                summary: "Indicators shared by the SOC's intelligence platform".to_string(),
                category: "Partner".to_string(),
                source_label: Some("iocx".to_string()),
                access: Access::Private,
                alertable: true,
            };
            inner.feeds.insert(id, StoredFeed { info, reports });
        }
        let span_ms = Duration::days(7).num_milliseconds();
        let org = self.config.org_key.clone();
        let generated: Vec<Alert> = (0..alerts)
            .map(|_| {
                let back = inner.rng.gen_range(60_000..span_ms);
                let at = now - Duration::milliseconds(back);
                alerts::generate(&mut inner.rng, &org, at)
            })
            .collect();
        inner.add_alerts(generated);
    }
}

const PUBLIC_FEEDS: &[(&str, &str, &str)] = &[
    (
        "Carbon Black Known IOCs",
        "Indicators of compromise the Carbon Black threat analysis unit has confirmed.",
        "Carbon Black",
    ),
    (
        "abuse.ch Malware Hashes",
        "Hashes of malware samples collected by abuse.ch.",
        "Open Source",
    ),
];

fn hex(rng: &mut StdRng, len: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdef";
    (0..len)
        .map(|_| char::from(DIGITS[rng.gen_range(0..16)]))
        .collect()
}

fn sample_report(
    id: String,
    now: DateTime<Utc>,
    n: usize,
    values: Vec<String>,
    field: &str,
) -> Report {
    Report {
        timestamp: (now - Duration::hours(n as i64 % 720)).timestamp(),
        title: format!("Campaign indicators #{}", n + 1),
        description: "Indicators observed in an active intrusion set.".to_string(),
        severity: (n % 10) as i64 + 1,
        link: None,
        tags: vec!["malware".to_string()],
        iocs_v2: vec![IocV2 {
            id: format!("{id}-ioc"),
            match_type: MatchType::Equality,
            values,
            field: Some(field.to_string()),
            link: None,
        }],
        visibility: None,
        id,
    }
}

fn owned_feed<'a>(inner: &'a mut Inner, id: &str) -> Result<&'a mut StoredFeed, Refusal> {
    match inner.feeds.get_mut(id) {
        None => Err(feed_not_found(id)),
        Some(f) if f.info.access == Access::Public => Err(public_feed()),
        Some(f) => Ok(f),
    }
}

fn feed_not_found(id: &str) -> Refusal {
    Refusal::NotFound(format!("Feed {id} not found"))
}

fn report_not_found(id: &str) -> Refusal {
    Refusal::NotFound(format!("Report {id} not found"))
}

fn watchlist_not_found(id: &str) -> Refusal {
    Refusal::NotFound(format!("Watchlist {id} not found"))
}

fn public_feed() -> Refusal {
    Refusal::Forbidden("Public feeds can only be changed by Carbon Black.".to_string())
}
