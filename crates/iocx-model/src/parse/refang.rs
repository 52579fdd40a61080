//! Refanging: undoing the ways analysts "defang" indicators so nobody clicks them, and removing
//! the wrapping that values pick up in reports.
//!
//! The result is a fixed point: refanging it again changes nothing. That matters because
//! canonical values are parsed again (by other nodes, by re-imports) and must come back
//! unchanged; a single pass would turn `[[.]]` into `[.]`, which a second pass would turn
//! into `.`.

use std::borrow::Cow;

/// The refanged form of `raw`: see the module docs and `docs/indicators.md`. Borrows `raw`
/// when only trimming was needed, which is the common case in bulk feeds.
pub(crate) fn refang(raw: &str) -> Cow<'_, str> {
    let first = strip(raw);
    let Some(mut owned) = rewrite(first) else {
        return Cow::Borrowed(first);
    };
    // Each rewrite makes the text strictly shorter (or turns a defanged scheme into a real
    // one, which cannot match again), so this loop ends.
    loop {
        let stripped = strip(&owned);
        match rewrite(stripped) {
            Some(next) => owned = next,
            None if stripped.len() == owned.len() => return Cow::Owned(owned),
            None => return Cow::Owned(stripped.to_owned()),
        }
    }
}

/// Whether `refang(raw)` is `raw` itself, judged from the ends and the start alone, given
/// whether `raw` has a byte refanging acts on anywhere (`[`, `(`, `{`, tab, line break). A
/// `false` only means "maybe not": [`refang`] then decides.
pub(crate) fn is_clean(raw: &str, has_refang_byte: bool) -> bool {
    // Printable ASCII that neither trimming nor unwrapping touches.
    fn plain_edge(b: u8) -> bool {
        matches!(b, b'!'..=b'~')
            && !matches!(
                b,
                b'<' | b'>' | b'[' | b']' | b'(' | b')' | b'{' | b'}' | b'"' | b'\'' | b'`'
            )
    }
    let bytes = raw.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    !has_refang_byte && plain_edge(first) && plain_edge(last) && defanged_scheme(bytes).is_none()
}

/// Characters trimmed from both ends besides Unicode white space: the byte-order mark and the
/// zero-width space that copy-paste from documents leaves behind.
fn is_trimmed(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}' || c == '\u{200b}'
}

/// Pairs that enclose a whole value in reports and mails.
const WRAPPERS: [(char, char); 9] = [
    ('<', '>'),
    ('[', ']'),
    ('(', ')'),
    ('{', '}'),
    ('"', '"'),
    ('\'', '\''),
    ('`', '`'),
    ('\u{201c}', '\u{201d}'),
    ('\u{2018}', '\u{2019}'),
];

/// `s` without surrounding white space and enclosing quote or bracket pairs, repeatedly.
///
/// A bracket pair is removed only when the opening bracket closes at the very end, so
/// `[.]example[.]` keeps its brackets (they are defanging, not wrapping) while `[::1]` and
/// `(example.com)` lose theirs.
fn strip(mut s: &str) -> &str {
    loop {
        s = s.trim_matches(is_trimmed);
        let mut chars = s.chars();
        let (Some(first), Some(last)) = (chars.next(), chars.next_back()) else {
            return s;
        };
        let Some(&(open, close)) = WRAPPERS.iter().find(|(o, c)| *o == first && *c == last) else {
            return s;
        };
        if open != close && !encloses(s, open, close) {
            return s;
        }
        s = &s[open.len_utf8()..s.len() - close.len_utf8()];
    }
}

/// Whether the `open` at the start of `s` is closed by the `close` at its end.
fn encloses(s: &str, open: char, close: char) -> bool {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return i + c.len_utf8() == s.len();
            }
        }
    }
    false
}

/// Defanged spellings inside brackets: `[.]`, `(dot)`, `{at}`, `[://]`, … The longest first,
/// so `[://]` is not read as `[:` followed by junk.
const TOKENS: [(&str, &str); 7] = [
    ("://", "://"),
    ("dot", "."),
    (".", "."),
    (":", ":"),
    ("at", "@"),
    ("@", "@"),
    ("/", "/"),
];

/// Defanged schemes, recognised only at the very start and before a colon (`hxxp://`, and
/// `hXXps[:]//` once its token is refanged): elsewhere `hxxp` is ordinary text, as in a path
/// `/hxxp-test`.
const SCHEMES: [(&str, &str); 3] = [("hxxps", "https"), ("hxxp", "http"), ("fxp", "ftp")];

/// The defanged scheme `bytes` starts with, and its real spelling.
fn defanged_scheme(bytes: &[u8]) -> Option<&'static (&'static str, &'static str)> {
    SCHEMES.iter().find(|(defanged, _)| {
        bytes.len() > defanged.len()
            && bytes[..defanged.len()].eq_ignore_ascii_case(defanged.as_bytes())
            // Only before a colon: `hxxp[:]//` gets here once its token is refanged, and
            // `fxp{a@example.com` is a mailbox, not a defanged scheme.
            && bytes[defanged.len()] == b':'
    })
}

/// `s` with line breaks and tabs removed, or else its defanged scheme and bracketed tokens
/// replaced; `None` when it has none of these.
fn rewrite(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    // A value broken over lines (a long URL wrapped in a mail) is one value, as browsers read
    // it. This comes first and alone so that tokens it joins (`[\n.]`) are refanged by the
    // next round.
    if memchr::memchr3(b'\t', b'\n', b'\r', bytes).is_some() {
        return Some(s.replace(['\t', '\n', '\r'], ""));
    }
    let scheme = defanged_scheme(bytes);
    let first_bracket = memchr::memchr3(b'[', b'(', b'{', bytes);
    if scheme.is_none() && first_bracket.is_none() {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    if let Some((defanged, real)) = scheme {
        out.push_str(real);
        rest = &s[defanged.len()..];
    }
    let mut changed = scheme.is_some();
    while let Some(at) = memchr::memchr3(b'[', b'(', b'{', rest.as_bytes()) {
        let close = match rest.as_bytes()[at] {
            b'[' => b']',
            b'(' => b')',
            _ => b'}',
        };
        let after = &rest.as_bytes()[at + 1..];
        let token = TOKENS.iter().find(|(inner, _)| {
            after.len() > inner.len()
                && after[..inner.len()].eq_ignore_ascii_case(inner.as_bytes())
                && after[inner.len()] == close
        });
        match token {
            Some((inner, real)) => {
                out.push_str(&rest[..at]);
                out.push_str(real);
                rest = &rest[at + inner.len() + 2..];
                changed = true;
            }
            None => {
                out.push_str(&rest[..=at]);
                rest = &rest[at + 1..];
            }
        }
    }
    if !changed {
        return None;
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refang_table() {
        let cases = [
            ("example.com", "example.com"),
            ("  example.com\t", "example.com"),
            ("\u{feff}example.com\u{200b}", "example.com"),
            ("example[.]com", "example.com"),
            ("example(.)com", "example.com"),
            ("example{.}com", "example.com"),
            ("example[dot]com", "example.com"),
            ("example[DOT]com", "example.com"),
            ("example(dot)com", "example.com"),
            ("hxxp://evil[.]com", "http://evil.com"),
            ("hXXps[:]//evil[.]com", "https://evil.com"),
            ("hxxps[://]evil.com", "https://evil.com"),
            ("fxp://files.example", "ftp://files.example"),
            ("user[at]example.com", "user@example.com"),
            ("user[@]example.com", "user@example.com"),
            ("user(at)example.com", "user@example.com"),
            ("user(AT)example.com", "user@example.com"),
            ("<http://example.com/>", "http://example.com/"),
            ("\"example.com\"", "example.com"),
            ("'example.com'", "example.com"),
            ("[example.com]", "example.com"),
            ("(example.com)", "example.com"),
            ("[::1]", "::1"),
            ("\u{201c}example.com\u{201d}", "example.com"),
            (" ( \"example[.]com\" ) ", "example.com"),
            ("[.]example[.]", ".example."),
            ("[[.]]", "."),
            ("http://x.example/hxxp-test", "http://x.example/hxxp-test"),
            ("http://x.example/a(b)", "http://x.example/a(b)"),
            ("hxxp", "hxxp"),
            ("http://x.example/a\tb\r\nc", "http://x.example/abc"),
            ("http://x.example/(\t.)", "http://x.example/."),
            ("exa\nmple[\n.]com", "example.com"),
            ("", ""),
            ("[]", ""),
        ];
        for (raw, want) in cases {
            assert_eq!(refang(raw), want, "refang({raw:?})");
            assert_eq!(refang(want), want, "refang is a fixed point for {want:?}");
        }
    }

    #[test]
    fn already_clean_values_are_borrowed() {
        assert!(matches!(
            refang(" example.com "),
            Cow::Borrowed("example.com")
        ));
        assert!(matches!(refang("http://x.example/a(b)"), Cow::Borrowed(_)));
    }
}
