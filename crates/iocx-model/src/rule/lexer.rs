//! Tokens of the rule language, with the line and column where each starts.

use super::RuleError;

/// A token, its text as written, and where it starts (1-based line and column, in characters).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub text: String,
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A bare word: a keyword, field, name or unquoted value.
    Word,
    /// Quoted text, unescaped.
    Str(String),
    /// A whole number.
    Int(i64),
    /// A number with a time unit (`7d`), in seconds.
    Duration(i64),
    /// `/…/flags`: the body as written (escapes kept) and the `i` flag.
    Regex(String, bool),
    /// A comparison operator.
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    Minus,
    Plus,
    End,
}

impl Token {
    /// How an error message names this token.
    pub fn describe(&self) -> String {
        match &self.tok {
            Tok::End => "end of input".into(),
            Tok::Str(_) => format!("\"{}\"", self.text.trim_matches(['"', '\''])),
            _ => format!("`{}`", self.text),
        }
    }

    /// Whether this is the bare word `w` (keywords are case-insensitive).
    pub fn is_word(&self, w: &str) -> bool {
        self.tok == Tok::Word && self.text.eq_ignore_ascii_case(w)
    }
}

/// Seconds in one of the time units rules accept.
pub(crate) fn unit_seconds(unit: &str) -> Option<i64> {
    Some(match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    })
}

/// A duration such as `7d`, in seconds.
fn duration(text: &str) -> Option<i64> {
    let digits_end = text.find(|c: char| !c.is_ascii_digit())?;
    if digits_end == 0 {
        return None;
    }
    let n: i64 = text[..digits_end].parse().ok()?;
    let unit = unit_seconds(&text[digits_end..].to_ascii_lowercase())?;
    Some(n.saturating_mul(unit))
}

/// Characters that end a bare word.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | ',' | '"' | '\'' | '=' | '!' | '<' | '>')
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
    line: usize,
    col: usize,
    out: Vec<Token>,
}

impl Lexer {
    fn bump(&mut self) -> Option<char> {
        let c = *self.chars.get(self.at)?;
        self.at += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn push(&mut self, tok: Tok, text: String, line: usize, col: usize) {
        self.out.push(Token {
            tok,
            text,
            line,
            col,
        });
    }

    fn quoted(&mut self, quote: char, line: usize, col: usize) -> Result<(), RuleError> {
        let mut raw = String::from(quote);
        let mut s = String::new();
        self.bump();
        loop {
            let (l, c) = (self.line, self.col);
            match self.bump() {
                None => return Err(RuleError::at(line, col, "this quoted text is never closed")),
                Some('\n') => {
                    return Err(RuleError::at(
                        line,
                        col,
                        "this quoted text is not closed on its line",
                    ));
                }
                Some('\\') => {
                    let e = self.bump();
                    let ch = match e {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some(e @ ('\\' | '"' | '\'')) => e,
                        _ => {
                            return Err(RuleError::at(
                                l,
                                c,
                                "unknown escape in quoted text; use \\\\, \\\", \\', \\n or \\t",
                            ));
                        }
                    };
                    raw.push('\\');
                    raw.extend(e);
                    s.push(ch);
                }
                Some(ch) if ch == quote => {
                    raw.push(ch);
                    break;
                }
                Some(ch) => {
                    raw.push(ch);
                    s.push(ch);
                }
            }
        }
        self.push(Tok::Str(s), raw, line, col);
        Ok(())
    }

    fn regex(&mut self, line: usize, col: usize) -> Result<(), RuleError> {
        self.bump();
        let mut body = String::new();
        loop {
            match self.peek(0) {
                None | Some('\n') => {
                    return Err(RuleError::at(
                        line,
                        col,
                        "this /regex/ is never closed (write `\\/` for a `/` inside it)",
                    ));
                }
                Some('\\') => {
                    body.push('\\');
                    self.bump();
                    if let Some(n) = self.peek(0).filter(|c| *c != '\n') {
                        body.push(n);
                        self.bump();
                    }
                }
                Some('/') => {
                    self.bump();
                    break;
                }
                Some(c) => {
                    body.push(c);
                    self.bump();
                }
            }
        }
        let mut ignore_case = false;
        let mut flags = String::new();
        while let Some(f) = self.peek(0).filter(char::is_ascii_alphanumeric) {
            if f != 'i' {
                return Err(RuleError::at(
                    self.line,
                    self.col,
                    format!("unknown regex flag `{f}`; the only flag is `i` (ignore case)"),
                ));
            }
            ignore_case = true;
            flags.push(f);
            self.bump();
        }
        let text = format!("/{body}/{flags}");
        self.push(Tok::Regex(body, ignore_case), text, line, col);
        Ok(())
    }

    /// A bare run of characters: a word, a number, a duration, or `now-7d` written together.
    fn run(&mut self, line: usize, col: usize) -> Result<(), RuleError> {
        let mut text = String::new();
        while let Some(c) = self.peek(0).filter(|c| !ends_word(*c)) {
            text.push(c);
            self.bump();
        }
        // `now-7d`, `now+1h`: split into three tokens.
        if text.len() > 3
            && text.as_bytes()[..3].eq_ignore_ascii_case(b"now")
            && matches!(text.as_bytes()[3], b'-' | b'+')
        {
            self.push(Tok::Word, text[..3].to_string(), line, col);
            return self.signed(&text[3..], line, col + 3);
        }
        if text.starts_with(['-', '+']) {
            return self.signed(&text, line, col);
        }
        let tok = if text.bytes().all(|b| b.is_ascii_digit()) {
            Tok::Int(
                text.parse()
                    .map_err(|_| RuleError::at(line, col, format!("{text} is too large")))?,
            )
        } else if let Some(secs) = duration(&text) {
            Tok::Duration(secs)
        } else {
            Tok::Word
        };
        self.push(tok, text, line, col);
        Ok(())
    }

    /// A run starting with `-` or `+`: the sign alone, a negative number, or sign and duration.
    fn signed(&mut self, text: &str, line: usize, col: usize) -> Result<(), RuleError> {
        let (sign, rest) = text.split_at(1);
        let sign_tok = if sign == "-" { Tok::Minus } else { Tok::Plus };
        if rest.is_empty() {
            self.push(sign_tok, sign.to_string(), line, col);
        } else if let Some(secs) = duration(rest) {
            self.push(sign_tok, sign.to_string(), line, col);
            self.push(Tok::Duration(secs), rest.to_string(), line, col + 1);
        } else if sign == "-" && rest.bytes().all(|b| b.is_ascii_digit()) {
            let n: i64 = text
                .parse()
                .map_err(|_| RuleError::at(line, col, format!("{text} is too large")))?;
            self.push(Tok::Int(n), text.to_string(), line, col);
        } else {
            self.push(Tok::Word, text.to_string(), line, col);
        }
        Ok(())
    }
}

/// Splits rule text into tokens, ending with [`Tok::End`]. `#` starts a comment to the end of
/// the line.
pub(crate) fn lex(text: &str) -> Result<Vec<Token>, RuleError> {
    let mut lx = Lexer {
        chars: text.chars().collect(),
        at: 0,
        line: 1,
        col: 1,
        out: Vec::new(),
    };
    while let Some(c) = lx.peek(0) {
        let (line, col) = (lx.line, lx.col);
        if c.is_whitespace() {
            lx.bump();
            continue;
        }
        let single = |t: Tok, s: &str, lx: &mut Lexer, n: usize| {
            for _ in 0..n {
                lx.bump();
            }
            lx.push(t, s.to_string(), line, col);
        };
        match (c, lx.peek(1)) {
            ('#', _) => {
                while lx.peek(0).is_some_and(|c| c != '\n') {
                    lx.bump();
                }
            }
            ('(', _) => single(Tok::LParen, "(", &mut lx, 1),
            (')', _) => single(Tok::RParen, ")", &mut lx, 1),
            (',', _) => single(Tok::Comma, ",", &mut lx, 1),
            ('=', Some('=')) => single(Tok::Op("="), "==", &mut lx, 2),
            ('=', _) => single(Tok::Op("="), "=", &mut lx, 1),
            ('!', Some('=')) => single(Tok::Op("!="), "!=", &mut lx, 2),
            ('!', _) => {
                return Err(RuleError::at(
                    line,
                    col,
                    "unexpected `!`; write `!=` to compare or `not` to negate",
                ));
            }
            ('<', Some('=')) => single(Tok::Op("<="), "<=", &mut lx, 2),
            ('<', Some('>')) => single(Tok::Op("!="), "<>", &mut lx, 2),
            ('<', _) => single(Tok::Op("<"), "<", &mut lx, 1),
            ('>', Some('=')) => single(Tok::Op(">="), ">=", &mut lx, 2),
            ('>', _) => single(Tok::Op(">"), ">", &mut lx, 1),
            ('"' | '\'', _) => lx.quoted(c, line, col)?,
            // A `/` right after `matches` opens a regex; anywhere else it is part of a word.
            ('/', _) if lx.out.last().is_some_and(|t| t.is_word("matches")) => {
                lx.regex(line, col)?;
            }
            _ => lx.run(line, col)?,
        }
    }
    let (line, col) = (lx.line, lx.col);
    lx.push(Tok::End, String::new(), line, col);
    Ok(lx.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<(Tok, String)> {
        lex(text)
            .unwrap()
            .into_iter()
            .map(|t| (t.tok, t.text))
            .collect()
    }

    #[test]
    fn words_numbers_durations() {
        assert_eq!(
            toks("last_seen>now-7d"),
            vec![
                (Tok::Word, "last_seen".into()),
                (Tok::Op(">"), ">".into()),
                (Tok::Word, "now".into()),
                (Tok::Minus, "-".into()),
                (Tok::Duration(7 * 86_400), "7d".into()),
                (Tok::End, String::new()),
            ]
        );
        // A hash that starts with digits is a word, not a number and a unit.
        assert_eq!(toks("5d41402abc4b2a76b9719d911017c592")[0].0, Tok::Word);
        assert_eq!(toks("-3")[0].0, Tok::Int(-3));
        assert_eq!(toks("2026-01-31")[0].0, Tok::Word);
        assert_eq!(toks("10.0.0.0/8")[0].0, Tok::Word);
    }

    #[test]
    fn positions_count_characters_and_lines() {
        let t = lex("kind = url # comment\n  and tags = \"é\"  ").unwrap();
        let at: Vec<(usize, usize)> = t.iter().map(|t| (t.line, t.col)).collect();
        assert_eq!(
            at,
            vec![
                (1, 1),
                (1, 6),
                (1, 8),
                (2, 3),
                (2, 7),
                (2, 12),
                (2, 14),
                (2, 19)
            ]
        );
    }

    #[test]
    fn regex_only_after_matches() {
        assert_eq!(
            toks("value matches /a\\/b/i")[2].0,
            Tok::Regex("a\\/b".into(), true)
        );
        assert_eq!(toks("value starts_with /a")[2].0, Tok::Word);
    }
}
