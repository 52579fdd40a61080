//! Unit tests of the pieces that need no server: the encoded-query grammar, date values, value
//! coercion on writes, dot-walking and rendering. The HTTP behaviour is tested against a real
//! server in `tests/servicenow.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone as _, Utc};
use serde_json::{Map, Value, json};

use super::*;

fn cond(field: &str, op: Op, value: &str) -> Cond {
    Cond {
        field: field.to_string(),
        op,
        value: value.to_string(),
    }
}

#[test]
fn or_binds_tighter_than_and_and_nq_starts_a_new_query() {
    let q = parse_query("a=1^b=2^ORc=3^NQd!=4^ORDERBYDESCe^ORDERBYf").unwrap();
    assert_eq!(
        q.queries,
        vec![
            vec![
                vec![cond("a", Op::Eq, "1")],
                vec![cond("b", Op::Eq, "2"), cond("c", Op::Eq, "3")],
            ],
            vec![vec![cond("d", Op::Ne, "4")]],
        ]
    );
    assert_eq!(
        q.order,
        vec![("e".to_string(), true), ("f".to_string(), false)]
    );
}

#[test]
fn operators_are_matched_longest_first() {
    let cases = [
        ("valueNOT LIKEx", Op::NotLike, "x"),
        ("valueLIKEx", Op::Like, "x"),
        ("valueNOT INa,b", Op::NotIn, "a,b"),
        ("valueINa,b", Op::In, "a,b"),
        ("valueISNOTEMPTY", Op::IsNotEmpty, ""),
        ("valueISEMPTY", Op::IsEmpty, ""),
        ("valueSTARTSWITHab", Op::StartsWith, "ab"),
        ("valueENDSWITHab", Op::EndsWith, "ab"),
        ("n>=5", Op::Ge, "5"),
        ("n<=5", Op::Le, "5"),
        ("n>5", Op::Gt, "5"),
        ("n<5", Op::Lt, "5"),
        ("n!=5", Op::Ne, "5"),
        ("type.value=MD5", Op::Eq, "MD5"),
        ("d=a=b", Op::Eq, "a=b"),
        ("nBETWEEN1@5", Op::Between, "1@5"),
    ];
    for (text, op, value) in cases {
        let q = parse_query(text).unwrap();
        let c = &q.queries[0][0][0];
        assert_eq!((c.op, c.value.as_str()), (op, value), "{text}");
    }
}

#[test]
fn carets_escape_and_end_markers_are_skipped() {
    let q = parse_query("notes=a^^b^EQ").unwrap();
    assert_eq!(q.queries, vec![vec![vec![cond("notes", Op::Eq, "a^b")]]]);
    assert_eq!(parse_query("").unwrap(), Query::default());
    assert!(parse_query("Value=1").is_err(), "fields are lower case");
    assert!(parse_query("value~1").is_err());
    assert!(parse_query("=1").is_err());
    assert!(parse_query("valueDYNAMICabc").is_err());
}

#[test]
fn date_values_take_plain_and_javascript_forms() {
    let now = Utc.with_ymd_and_hms(2024, 6, 15, 12, 30, 0).unwrap();
    let at = |y, m, d, h, mi, s| Some(Utc.with_ymd_and_hms(y, m, d, h, mi, s).unwrap());
    assert_eq!(
        parse_date_value("2024-01-02 03:04:05", now),
        at(2024, 1, 2, 3, 4, 5)
    );
    assert_eq!(parse_date_value("2024-01-02", now), at(2024, 1, 2, 0, 0, 0));
    assert_eq!(
        parse_date_value("javascript:gs.dateGenerate('2024-01-02','03:04:05')", now),
        at(2024, 1, 2, 3, 4, 5)
    );
    assert_eq!(
        parse_date_value("javascript:gs.dateGenerate(\"2024-01-02 03:04:05\")", now),
        at(2024, 1, 2, 3, 4, 5)
    );
    assert_eq!(
        parse_date_value("javascript:gs.daysAgoStart(1)", now),
        at(2024, 6, 14, 0, 0, 0)
    );
    assert_eq!(
        parse_date_value("javascript:gs.beginningOfToday()", now),
        at(2024, 6, 15, 0, 0, 0)
    );
    assert_eq!(
        parse_date_value("javascript:gs.hoursAgo(2)", now),
        at(2024, 6, 15, 10, 30, 0)
    );
    assert_eq!(parse_date_value("javascript:alert(1)", now), None);
    assert_eq!(parse_date_value("yesterday", now), None);
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

#[test]
fn writes_coerce_values_and_resolve_references() {
    let state = State::new(7, "api.user", Utc::now());
    let obs = table("sn_ti_observable").unwrap();
    let now = Utc.with_ymd_and_hms(2024, 6, 15, 12, 0, 0).unwrap();
    let rec = state
        .write(|db| {
            db.insert(
                obs,
                &object(
                    json!({"value": 42, "type": "sha256", "notes": null, "finding": true,
                               "sys_created_on": "1999-01-01 00:00:00", "unknown": "x"}),
                ),
                "api.user",
                now,
            )
        })
        .unwrap();
    assert_eq!(rec["value"], "42");
    assert_eq!(rec["notes"], "");
    assert_eq!(rec["finding"], "true");
    assert_eq!(rec["sys_created_on"], "2024-06-15 12:00:00");
    assert!(!rec.contains_key("unknown"));
    let type_name = state.read(|db| resolve(db, obs, &rec, "type.name").map(|r| r.raw));
    assert_eq!(type_name.as_deref(), Some("SHA256"));
    // A reference object echoed back keeps its value; unknown text stays as a broken reference.
    let type_id = rec["type"].clone();
    let rec2 = state
        .write(|db| {
            db.insert(
                obs,
                &object(json!({"value": "x", "type": {"link": "…", "value": type_id}})),
                "api.user",
                now,
            )
        })
        .unwrap();
    assert_eq!(rec2["type"], rec["type"]);
    let broken = state
        .write(|db| db.insert(obs, &object(json!({"type": "no such type"})), "u", now))
        .unwrap();
    assert_eq!(broken["type"], "no such type");
    let display = state.read(|db| resolve(db, obs, &broken, "type").map(|r| r.display));
    assert_eq!(display.as_deref(), Some(""));
    // A sys_id given on insert is kept once; the second use is refused.
    let id = "0123456789abcdef0123456789abcdef";
    let first = state.write(|db| db.insert(obs, &object(json!({"sys_id": id})), "u", now));
    assert_eq!(first.unwrap()["sys_id"], id);
    let second = state.write(|db| db.insert(obs, &object(json!({"sys_id": id})), "u", now));
    assert!(matches!(second, Err(WriteError::Invalid(..))));
}

#[test]
fn task_tables_number_their_records() {
    let state = State::new(1, "api.user", Utc::now());
    let sir = table("sn_si_incident").unwrap();
    let now = Utc::now();
    let a = state
        .write(|db| db.insert(sir, &Map::new(), "api.user", now))
        .unwrap();
    let b = state
        .write(|db| db.insert(sir, &Map::new(), "api.user", now))
        .unwrap();
    assert_eq!(a["number"], "SIR0010001");
    assert_eq!(b["number"], "SIR0010002");
    assert_eq!(a["state"], "10");
    assert!(!a["opened_by"].is_empty(), "opened_by is the API user");
    assert_eq!(a["sys_class_name"], "sn_si_incident");
}

#[test]
fn seeded_data_is_realistic_and_deterministic() {
    let now = Utc.with_ymd_and_hms(2024, 6, 15, 12, 0, 0).unwrap();
    let a = State::new(3, "u", now);
    a.seed(40, 4, now);
    let b = State::new(3, "u", now);
    b.seed(40, 4, now);
    assert_eq!(a.snapshot(), b.snapshot());
    let obs = table("sn_ti_observable").unwrap();
    a.read(|db| {
        assert_eq!(db.count("sn_ti_observable"), 40);
        assert_eq!(db.count("incident"), 4);
        for r in db.rows("sn_ti_observable") {
            assert!(r["sys_created_on"] <= r["sys_updated_on"]);
            let kind = resolve(db, obs, r, "type.value").unwrap().raw;
            assert!(!kind.is_empty(), "every seeded observable has a type");
        }
    });
}

#[test]
fn args_defaults_match_the_flags() {
    use clap::Parser as _;
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: Args,
    }
    let parsed = Wrapper::try_parse_from(["servicenow"]).unwrap().args;
    let default = Args::default();
    assert_eq!(format!("{parsed:?}"), format!("{default:?}"));
    let ro: ReadOnlyUser = "viewer:pw".parse().unwrap();
    assert_eq!(format!("{ro:?}"), "ReadOnlyUser(viewer:****)");
    assert!("nopassword".parse::<ReadOnlyUser>().is_err());
}
