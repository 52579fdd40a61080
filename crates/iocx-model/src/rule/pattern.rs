//! Regular expressions in rules: the subset on which Rust's `regex` crate and PostgreSQL's
//! advanced regular expressions (ARE) give the same answer.
//!
//! A rule's `/…/` is checked once, when the rule is parsed, and rewritten into one *portable*
//! pattern that both engines run unchanged: the shorthand classes become explicit ASCII sets
//! (`\d` → `[0-9]`, because Rust's `\d` is any Unicode digit and PostgreSQL's depends on the
//! locale), and the `i` flag becomes explicit alternatives for ASCII letters (`a` → `[aA]`,
//! because the two engines fold non-ASCII case differently). In-memory evaluation and SQLite's
//! `regexp()` run the portable pattern with Rust's `regex` in "dot matches newline" mode, which
//! is PostgreSQL's default; PostgreSQL runs it with `~`. Anything outside the subset is refused
//! with a message that says what to write instead.

use std::fmt;
use std::sync::Arc;

/// The longest pattern accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 1_000;

/// The largest repetition count PostgreSQL accepts (`{n,m}` with n, m ≤ 255).
const MAX_REPEAT: u32 = 255;

/// Punctuation that may be escaped with a backslash (it then stands for itself). Other escapes
/// are refused: `\b`, `\w`, `\<`, `\1`, `\p{…}`, `\x41` and the like mean different things (or
/// nothing) in one of the two engines.
const ESCAPABLE: &str = "\\.+*?()|[]{}^$-/";

/// The characters `\s` stands for: ASCII white space, as both engines agree on.
const SPACE_SET: &str = "\\t\\n\\v\\f\\r ";

/// A checked regular expression, as written and as both engines run it.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    ignore_case: bool,
    portable: String,
    compiled: Arc<regex::Regex>,
}

/// A pattern outside the supported subset, with the character offset where it goes wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PatternError {
    /// The offset in characters from the start of the pattern (0-based).
    pub offset: usize,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl Pattern {
    /// Checks `source` against the supported subset and compiles it; `ignore_case` is the `i`
    /// flag (ASCII letters match either case).
    ///
    /// A `\/` in `source` is the same as `/` (it is how a slash is written between slashes);
    /// the stored source keeps the plain `/`.
    ///
    /// # Errors
    /// A [`PatternError`] at the first construct outside the subset, or when the pattern is
    /// longer than [`MAX_PATTERN_LEN`] or too large to compile.
    pub fn new(source: &str, ignore_case: bool) -> Result<Pattern, PatternError> {
        let source = unescape_slashes(source);
        if source.len() > MAX_PATTERN_LEN {
            return Err(PatternError {
                offset: 0,
                message: format!("the regex is longer than {MAX_PATTERN_LEN} bytes"),
            });
        }
        let portable = Translator::new(&source, ignore_case).run()?;
        let compiled = regex::RegexBuilder::new(&portable)
            .dot_matches_new_line(true)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| PatternError {
                offset: 0,
                message: format!("not a valid regex: {e}"),
            })?;
        Ok(Pattern {
            source,
            ignore_case,
            portable,
            compiled: Arc::new(compiled),
        })
    }

    /// The pattern as written (with `\/` read as `/`).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the `i` flag is set.
    pub fn ignore_case(&self) -> bool {
        self.ignore_case
    }

    /// The pattern both engines run: PostgreSQL with `~`, Rust in dot-matches-newline mode.
    pub fn portable(&self) -> &str {
        &self.portable
    }

    /// The pattern for Rust's `regex` crate alone (the portable one with the `s` flag), as
    /// SQLite's `regexp()` receives it.
    pub fn for_rust(&self) -> String {
        format!("(?s:{})", self.portable)
    }

    /// Whether `text` contains a match.
    pub fn is_match(&self, text: &str) -> bool {
        self.compiled.is_match(text)
    }

    /// The rule text for this pattern: `/source/` with `/` escaped, and the flag.
    pub fn to_rule_text(&self) -> String {
        let mut out = String::with_capacity(self.source.len() + 3);
        out.push('/');
        let mut chars = self.source.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    out.push('\\');
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                }
                '/' => out.push_str("\\/"),
                c => out.push(c),
            }
        }
        out.push('/');
        if self.ignore_case {
            out.push('i');
        }
        out
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.source == other.source && self.ignore_case == other.ignore_case
    }
}

impl Eq for Pattern {}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rule_text())
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rule_text())
    }
}

/// `\/` → `/`, leaving every other escape as it is.
fn unescape_slashes(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('/') => out.push('/'),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One pass over the pattern: checks the subset and writes the portable form.
struct Translator {
    chars: Vec<char>,
    at: usize,
    ignore_case: bool,
    out: String,
    /// Whether the last item can take a quantifier (a literal, `.`, a class or a group).
    atom: bool,
    /// Open groups, by the offset of their `(`.
    groups: Vec<usize>,
}

impl Translator {
    fn new(source: &str, ignore_case: bool) -> Translator {
        Translator {
            chars: source.chars().collect(),
            at: 0,
            ignore_case,
            out: String::with_capacity(source.len() * 2),
            atom: false,
            groups: Vec::new(),
        }
    }

    fn err<T>(&self, offset: usize, message: impl Into<String>) -> Result<T, PatternError> {
        Err(PatternError {
            offset,
            message: message.into(),
        })
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn run(mut self) -> Result<String, PatternError> {
        while let Some(c) = self.peek(0) {
            let start = self.at;
            match c {
                '\\' => {
                    self.at += 1;
                    let Some(n) = self.peek(0) else {
                        return self.err(start, "the regex ends with a lone `\\`");
                    };
                    self.at += 1;
                    match n {
                        'd' => self.out.push_str("[0-9]"),
                        'D' => self.out.push_str("[^0-9]"),
                        's' => {
                            self.out.push('[');
                            self.out.push_str(SPACE_SET);
                            self.out.push(']');
                        }
                        'S' => {
                            self.out.push_str("[^");
                            self.out.push_str(SPACE_SET);
                            self.out.push(']');
                        }
                        'n' => self.out.push_str("\\n"),
                        't' => self.out.push_str("\\t"),
                        n if ESCAPABLE.contains(n) => {
                            self.out.push('\\');
                            self.out.push(n);
                        }
                        n => return self.err(start, bad_escape(n)),
                    }
                    self.atom = true;
                }
                '(' => {
                    self.at += 1;
                    if self.peek(0) == Some('?') {
                        if self.peek(1) != Some(':') {
                            return self.err(
                                start,
                                "`(?…)` is not supported (lookaround, named groups and inline \
                                 flags differ between engines); use `(?:…)` to group, and the \
                                 `/…/i` flag to ignore case",
                            );
                        }
                        self.at += 2;
                        self.out.push_str("(?:");
                    } else {
                        self.out.push('(');
                    }
                    self.groups.push(start);
                    self.atom = false;
                }
                ')' => {
                    self.at += 1;
                    if self.groups.pop().is_none() {
                        return self.err(start, "this `)` closes no group; write `\\)` for a `)`");
                    }
                    self.out.push(')');
                    self.atom = true;
                }
                '|' | '^' | '$' => {
                    self.at += 1;
                    self.out.push(c);
                    self.atom = false;
                }
                '.' => {
                    self.at += 1;
                    self.out.push('.');
                    self.atom = true;
                }
                '*' | '+' | '?' | '{' => self.quantifier()?,
                '}' => return self.err(start, "write `\\}` for a literal `}`"),
                ']' => return self.err(start, "write `\\]` for a literal `]`"),
                '[' => {
                    self.class()?;
                    self.atom = true;
                }
                c => {
                    self.at += 1;
                    self.literal(c);
                    self.atom = true;
                }
            }
        }
        if let Some(&open) = self.groups.last() {
            return self.err(open, "this `(` is never closed");
        }
        Ok(self.out)
    }

    /// A literal character outside a class.
    fn literal(&mut self, c: char) {
        if self.ignore_case && c.is_ascii_alphabetic() {
            self.out.push('[');
            self.out.push(c.to_ascii_lowercase());
            self.out.push(c.to_ascii_uppercase());
            self.out.push(']');
        } else {
            self.out.push(c);
        }
    }

    /// `*`, `+`, `?` or `{n}`, `{n,}`, `{n,m}`, each optionally followed by `?` (lazy).
    fn quantifier(&mut self) -> Result<(), PatternError> {
        let start = self.at;
        if !self.atom {
            return self.err(
                start,
                format!(
                    "`{}` has nothing to repeat here; escape it (`\\{}`) to match it literally",
                    self.chars[start], self.chars[start]
                ),
            );
        }
        if self.chars[start] == '{' {
            self.at += 1;
            let n = self.count(start)?;
            let mut text = format!("{{{n}");
            if self.peek(0) == Some(',') {
                self.at += 1;
                text.push(',');
                if self.peek(0) != Some('}') {
                    let m = self.count(start)?;
                    if m < n {
                        return self.err(
                            start,
                            format!("`{{{n},{m}}}`: the maximum is below the minimum"),
                        );
                    }
                    text.push_str(&m.to_string());
                }
            }
            if self.peek(0) != Some('}') {
                return self.err(
                    start,
                    "a repetition is written {n}, {n,} or {n,m}; write `\\{` for a literal `{`",
                );
            }
            self.at += 1;
            text.push('}');
            self.out.push_str(&text);
        } else {
            self.out.push(self.chars[start]);
            self.at += 1;
        }
        if self.peek(0) == Some('?') {
            self.out.push('?');
            self.at += 1;
        }
        if let Some(c @ ('*' | '+' | '?' | '{')) = self.peek(0) {
            return self.err(
                self.at,
                format!("`{c}` cannot follow another repetition; group the part first: `(?:…){c}`"),
            );
        }
        self.atom = false;
        Ok(())
    }

    /// Decimal digits of a repetition count, at most [`MAX_REPEAT`].
    fn count(&mut self, brace: usize) -> Result<u32, PatternError> {
        let from = self.at;
        while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
        if from == self.at {
            return self.err(
                brace,
                "a repetition is written {n}, {n,} or {n,m}; write `\\{` for a literal `{`",
            );
        }
        let digits: String = self.chars[from..self.at].iter().collect();
        match digits.parse::<u32>() {
            Ok(n) if n <= MAX_REPEAT => Ok(n),
            _ => self.err(
                brace,
                format!("repetition counts go up to {MAX_REPEAT} (PostgreSQL's limit)"),
            ),
        }
    }

    /// A bracketed class `[…]` or `[^…]`.
    fn class(&mut self) -> Result<(), PatternError> {
        let open = self.at;
        self.at += 1;
        self.out.push('[');
        if self.peek(0) == Some('^') {
            self.at += 1;
            self.out.push('^');
        }
        if self.peek(0) == Some(']') {
            return self.err(self.at, "write `\\]` for a `]` inside a class");
        }
        // Extra items for the `i` flag, added before the closing bracket.
        let mut folded = String::new();
        loop {
            let start = self.at;
            let Some(c) = self.peek(0) else {
                return self.err(open, "this `[` is never closed");
            };
            match c {
                ']' => {
                    self.at += 1;
                    self.out.push_str(&folded);
                    self.out.push(']');
                    return Ok(());
                }
                '[' => {
                    return self.err(
                        start,
                        "`[` inside a class (nested classes, [:alpha:], [.x.], [=x=]) is not \
                         supported; list the characters or ranges, and write `\\[` for a `[`",
                    );
                }
                '&' | '~' | '-' if self.peek(1) == Some(c) => {
                    return self.err(
                        start,
                        format!(
                            "`{c}{c}` inside a class is a set operation in Rust's regex and a \
                             literal in PostgreSQL; escape it (`\\{c}`) if you mean the character"
                        ),
                    );
                }
                '\\' => {
                    self.at += 1;
                    let Some(n) = self.peek(0) else {
                        return self.err(start, "the regex ends with a lone `\\`");
                    };
                    self.at += 1;
                    match n {
                        'd' => self.out.push_str("0-9"),
                        's' => self.out.push_str(SPACE_SET),
                        'D' | 'S' => {
                            return self
                                .err(start, format!("`\\{n}` is not supported inside a class"));
                        }
                        _ => {
                            let lo = escaped_char(n).ok_or_else(|| PatternError {
                                offset: start,
                                message: bad_escape(n),
                            })?;
                            self.class_item(lo, start, &mut folded)?;
                        }
                    }
                }
                c => {
                    self.at += 1;
                    self.class_item(c, start, &mut folded)?;
                }
            }
        }
    }

    /// A character inside a class, possibly the start of a range `lo-hi`.
    fn class_item(
        &mut self,
        lo: char,
        start: usize,
        folded: &mut String,
    ) -> Result<(), PatternError> {
        if self.peek(0) == Some('-') && self.peek(1) == Some('-') {
            return self.err(
                self.at,
                "`--` inside a class is a set operation in Rust's regex and a literal in \
                 PostgreSQL; escape it (`\\-`) if you mean the character",
            );
        }
        let is_range = self.peek(0) == Some('-') && self.peek(1).is_some_and(|c| c != ']');
        if is_range && lo == '-' {
            return self.err(start, "a range cannot start at `-`; list `\\-` on its own");
        }
        if !is_range {
            push_class_char(&mut self.out, lo);
            if self.ignore_case && lo.is_ascii_alphabetic() {
                push_class_char(folded, swap_case(lo));
            }
            return Ok(());
        }
        self.at += 1;
        let hi_at = self.at;
        let hi = match self.peek(0) {
            Some('\\') => {
                let n = self.peek(1).unwrap_or('\\');
                self.at += 2;
                escaped_char(n).ok_or_else(|| PatternError {
                    offset: hi_at,
                    message: format!(
                        "a range ends at one character; `\\{n}` is not one (or is not supported)"
                    ),
                })?
            }
            Some('[') => {
                return self.err(hi_at, "write `\\[` for a `[` inside a class");
            }
            Some(c) => {
                self.at += 1;
                c
            }
            None => return self.err(start, "this `[` is never closed"),
        };
        if hi < lo {
            return self.err(
                start,
                format!("the range `{lo}-{hi}` is backwards; write `{hi}-{lo}`"),
            );
        }
        push_class_char(&mut self.out, lo);
        self.out.push('-');
        push_class_char(&mut self.out, hi);
        if self.ignore_case {
            for (a, z) in [('a', 'z'), ('A', 'Z')] {
                let (from, to) = (lo.max(a), hi.min(z));
                if from <= to {
                    push_class_char(folded, swap_case(from));
                    folded.push('-');
                    push_class_char(folded, swap_case(to));
                }
            }
        }
        Ok(())
    }
}

/// The character an allowed escape stands for inside a class (`\n`, `\t`, punctuation).
fn escaped_char(n: char) -> Option<char> {
    match n {
        'n' => Some('\n'),
        't' => Some('\t'),
        n if ESCAPABLE.contains(n) => Some(n),
        _ => None,
    }
}

/// A character inside a class, escaped when it means something there.
fn push_class_char(out: &mut String, c: char) {
    match c {
        '\\' | ']' | '[' | '^' | '-' | '&' | '~' => {
            out.push('\\');
            out.push(c);
        }
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        c => out.push(c),
    }
}

fn swap_case(c: char) -> char {
    if c.is_ascii_lowercase() {
        c.to_ascii_uppercase()
    } else {
        c.to_ascii_lowercase()
    }
}

fn bad_escape(n: char) -> String {
    match n {
        'w' | 'W' | 'b' | 'B' => format!(
            "`\\{n}` means different things to Rust and PostgreSQL; write a class such as \
             `[A-Za-z0-9_]` instead"
        ),
        '1'..='9' => "back-references are not supported".to_string(),
        'p' | 'P' => "Unicode classes (`\\p{…}`) are not supported".to_string(),
        n => format!(
            "`\\{n}` is not supported; iocx accepts \\d \\D \\s \\S \\n \\t and a backslash \
             before one of {ESCAPABLE}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn portable(re: &str, ci: bool) -> String {
        Pattern::new(re, ci)
            .unwrap_or_else(|e| panic!("{re}: {e}"))
            .portable()
            .to_string()
    }

    #[test]
    fn translation() {
        assert_eq!(portable("a\\d+", false), "a[0-9]+");
        assert_eq!(portable("^a.c$", true), "^[aA].[cC]$");
        assert_eq!(portable("[a-f0-9]", true), "[a-f0-9A-F]");
        assert_eq!(portable("[^x\\d]", true), "[^x0-9X]");
        assert_eq!(portable("[Z-c]", true), "[Z-cA-Cz-z]");
        assert_eq!(portable("(?:ab){2,3}?", false), "(?:ab){2,3}?");
        assert_eq!(portable("a\\/b", false), "a/b");
        assert_eq!(Pattern::new("a\\/b", false).unwrap().source(), "a/b");
        assert_eq!(
            Pattern::new("a/b", true).unwrap().to_rule_text(),
            "/a\\/b/i"
        );
    }

    #[test]
    fn matching() {
        let p = Pattern::new("^evil\\.(com|net)$", true).unwrap();
        assert!(p.is_match("EVIL.Com"));
        assert!(!p.is_match("evil.org"));
        // ASCII folding only: the Kelvin sign is not a K.
        let k = Pattern::new("k", true).unwrap();
        assert!(k.is_match("K"));
        assert!(!k.is_match("\u{212A}"));
        // \d is ASCII digits only; . matches a newline, as in PostgreSQL.
        assert!(!Pattern::new("\\d", false).unwrap().is_match("\u{0660}"));
        assert!(Pattern::new("^a.b$", false).unwrap().is_match("a\nb"));
        assert!(!Pattern::new("\\s", false).unwrap().is_match("\u{a0}"));
    }

    #[test]
    fn refusals() {
        for (re, offset, text) in [
            ("a(?=b)", 1, "lookaround"),
            ("(?i)a", 0, "`(?…)`"),
            ("\\w+", 0, "different things"),
            ("(a)\\1", 3, "back-references"),
            ("\\p{L}", 0, "Unicode classes"),
            ("a**", 2, "cannot follow"),
            ("a{2}{3}", 4, "cannot follow"),
            ("*a", 0, "nothing to repeat"),
            ("^*", 1, "nothing to repeat"),
            ("a{256}", 1, "up to 255"),
            ("a{,3}", 1, "{n,m}"),
            ("a{3,2}", 1, "below the minimum"),
            ("[[:alpha:]]", 1, "nested"),
            ("[a--b]", 2, "set operation"),
            ("[a&&b]", 2, "set operation"),
            ("[]a]", 1, "`\\]`"),
            ("a]", 1, "`\\]`"),
            ("a}", 1, "`\\}`"),
            ("[\\D]", 1, "inside a class"),
            ("[z-a]", 1, "backwards"),
            ("(ab", 0, "never closed"),
            ("ab)", 2, "closes no group"),
            ("[ab", 0, "never closed"),
            ("\\<", 0, "not supported"),
            ("a\\", 1, "lone"),
        ] {
            let e = Pattern::new(re, false).expect_err(re);
            assert_eq!(e.offset, offset, "{re}: {e}");
            assert!(e.message.contains(text), "{re}: {e}");
        }
    }
}
