//! Printing a rule as canonical text: lowercase keywords, canonical field names, quoted names
//! and values, `now - 7d` style times, and only the parentheses the precedence needs. Parsing the
//! text gives the same tree (a property test checks it).

use super::ast::{Cond, Expr, Field, Op, TimeValue, Value};

/// `s` in double quotes, with `"`, `\`, newline and tab escaped.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A duration in the largest unit that divides it.
fn duration(secs: u64) -> String {
    for (unit, n) in [("w", 604_800u64), ("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs != 0 && secs.is_multiple_of(n) {
            return format!("{}{unit}", secs / n);
        }
    }
    format!("{secs}s")
}

fn time(t: &TimeValue) -> String {
    match *t {
        TimeValue::Now(0) => "now".into(),
        TimeValue::Now(o) if o < 0 => format!("now - {}", duration(o.unsigned_abs())),
        TimeValue::Now(o) => format!("now + {}", duration(o.unsigned_abs())),
        TimeValue::At(ts) => quote(&ts.to_rfc3339()),
    }
}

fn list<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
    format!("({})", items.iter().map(f).collect::<Vec<_>>().join(", "))
}

fn value(v: &Value) -> String {
    match v {
        Value::Text(t) => quote(t),
        Value::Texts(ts) => list(ts, |t| quote(t)),
        Value::Int(n) => n.to_string(),
        Value::Ints(ns) => list(ns, ToString::to_string),
        Value::Kind(k) => k.to_string(),
        Value::Kinds(ks) => list(ks, ToString::to_string),
        Value::Severity(s) => s.to_string(),
        Value::Severities(ss) => list(ss, ToString::to_string),
        Value::Time(t) => time(t),
        Value::Regex(p) => p.to_rule_text(),
        Value::Cidr(ip, p) => format!("{ip}/{p}"),
        Value::Domain(d) => d.clone(),
        Value::Bool(b) => b.to_string(),
    }
}

fn cond(c: &Cond) -> String {
    if matches!(c.field, Field::Active | Field::Safe)
        && c.op == Op::Eq
        && c.value == Value::Bool(true)
    {
        return c.field.name().to_string();
    }
    format!("{} {} {}", c.field.name(), c.op.text(), value(&c.value))
}

/// The canonical text of an expression.
pub(crate) fn to_text(e: &Expr) -> String {
    match e {
        Expr::Cond(c) => cond(c),
        Expr::Not(inner) => match **inner {
            Expr::Cond(_) | Expr::Not(_) => format!("not {}", to_text(inner)),
            _ => format!("not ({})", to_text(inner)),
        },
        Expr::And(parts) => join(parts, " and ", |p| matches!(p, Expr::Or(_) | Expr::And(_))),
        Expr::Or(parts) => join(parts, " or ", |p| matches!(p, Expr::Or(_))),
    }
}

/// Parts joined by `sep`, parenthesised where `paren` says.
fn join(parts: &[Expr], sep: &str, paren: impl Fn(&Expr) -> bool) -> String {
    parts
        .iter()
        .map(|p| {
            if paren(p) {
                format!("({})", to_text(p))
            } else {
                to_text(p)
            }
        })
        .collect::<Vec<_>>()
        .join(sep)
}
