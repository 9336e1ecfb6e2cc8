//! A small ClickHouse SQL tokenizer: statement splitting, `${placeholder}` substitution, and the
//! token stream `lint` reads. It knows just enough (strings, quoted identifiers, comments) that a
//! `;` inside a literal or comment never splits a statement.

use std::collections::BTreeMap;

/// Kind of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Keyword, identifier or number (`[A-Za-z0-9_]+`, plus `$`).
    Word,
    /// `'string literal'`.
    Str,
    /// `` `identifier` `` or `"identifier"`.
    QuotedIdent,
    /// Any other single character (`(`, `,`, `;`, `=`, `.`, ...).
    Punct,
    /// `-- ...` or `/* ... */`.
    Comment,
    /// Spaces and newlines.
    Space,
}

/// One token: its kind, text and byte offset in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    /// Kind.
    pub kind: TokenKind,
    /// Exact source text.
    pub text: &'a str,
    /// Byte offset of the first character.
    pub start: usize,
}

impl Token<'_> {
    /// Whether this is a word equal (ignoring ASCII case) to `w`.
    pub fn is_word(&self, w: &str) -> bool {
        self.kind == TokenKind::Word && self.text.eq_ignore_ascii_case(w)
    }

    /// Whether this is the punctuation character `c`.
    pub fn is_punct(&self, c: char) -> bool {
        self.kind == TokenKind::Punct && self.text.starts_with(c)
    }

    /// Whether the token carries meaning (not space, not comment).
    pub fn is_significant(&self) -> bool {
        !matches!(self.kind, TokenKind::Comment | TokenKind::Space)
    }

    /// The unquoted value of a string literal or quoted identifier; the text of anything else.
    pub fn unquoted(&self) -> String {
        match self.kind {
            TokenKind::Str | TokenKind::QuotedIdent if self.text.len() >= 2 => {
                let inner = &self.text[1..self.text.len() - 1];
                let mut out = String::with_capacity(inner.len());
                let mut chars = inner.chars();
                while let Some(c) = chars.next() {
                    if c == '\\' {
                        out.extend(chars.next());
                    } else {
                        out.push(c);
                    }
                }
                out
            }
            _ => self.text.to_owned(),
        }
    }
}

/// A tokenizing failure: an unterminated literal or comment, at a byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizeError {
    /// Byte offset where the unterminated construct starts.
    pub offset: usize,
    /// What is unterminated.
    pub what: &'static str,
}

/// Splits `sql` into tokens.
///
/// # Errors
/// [`TokenizeError`] for an unterminated string, quoted identifier or block comment.
pub fn tokenize(sql: &str) -> Result<Vec<Token<'_>>, TokenizeError> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let (kind, end) = next_token(sql, i)?;
        out.push(Token {
            kind,
            text: &sql[i..end],
            start: i,
        });
        i = end;
    }
    Ok(out)
}

fn next_token(sql: &str, i: usize) -> Result<(TokenKind, usize), TokenizeError> {
    let b = sql.as_bytes();
    let c = b[i];
    let rest = &sql[i..];
    Ok(match c {
        b'\'' => (TokenKind::Str, quoted_end(sql, i, b'\'', "string literal")?),
        b'`' | b'"' => (
            TokenKind::QuotedIdent,
            quoted_end(sql, i, c, "quoted identifier")?,
        ),
        b'-' if rest.starts_with("--") => (TokenKind::Comment, line_end(sql, i)),
        b'/' if rest.starts_with("/*") => {
            let end = rest
                .get(2..)
                .and_then(|r| r.find("*/"))
                .ok_or(TokenizeError {
                    offset: i,
                    what: "block comment",
                })?;
            (TokenKind::Comment, i + 2 + end + 2)
        }
        c if c.is_ascii_whitespace() => (
            TokenKind::Space,
            i + rest
                .find(|ch: char| !ch.is_ascii_whitespace())
                .unwrap_or(rest.len()),
        ),
        c if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 => (
            TokenKind::Word,
            i + rest
                .find(|ch: char| !is_word_char(ch))
                .unwrap_or(rest.len()),
        ),
        _ => (
            TokenKind::Punct,
            i + rest.chars().next().map_or(1, char::len_utf8),
        ),
    })
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$' || !c.is_ascii()
}

fn line_end(sql: &str, i: usize) -> usize {
    sql[i..].find('\n').map_or(sql.len(), |n| i + n)
}

/// End (exclusive) of a literal quoted by `q` starting at `i`; `\x` escapes and doubled quotes.
fn quoted_end(sql: &str, i: usize, q: u8, what: &'static str) -> Result<usize, TokenizeError> {
    let b = sql.as_bytes();
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            c if c == q && b.get(j + 1) == Some(&q) => j += 2,
            c if c == q => return Ok(j + 1),
            _ => j += 1,
        }
    }
    Err(TokenizeError { offset: i, what })
}

/// One statement of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// 0-based position in the file.
    pub index: usize,
    /// 1-based line of its first significant token.
    pub line: usize,
    /// Its text, from the first to the last significant token (no trailing `;`).
    pub sql: String,
}

/// Splits a file into statements at top-level `;`. Parts holding only comments and spaces are
/// dropped; comments inside a statement are kept.
///
/// # Errors
/// [`TokenizeError`] as [`tokenize`].
pub fn split(sql: &str) -> Result<Vec<Statement>, TokenizeError> {
    let tokens = tokenize(sql)?;
    let mut out = Vec::new();
    for part in tokens.split(|t| t.is_punct(';')) {
        let mut sig = part.iter().filter(|t| t.is_significant());
        let (Some(first), last) = (sig.next(), sig.next_back()) else {
            continue;
        };
        let last = last.unwrap_or(first);
        out.push(Statement {
            index: out.len(),
            line: line_of(sql, first.start),
            sql: sql[first.start..last.start + last.text.len()].to_owned(),
        });
    }
    Ok(out)
}

/// 1-based line number of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Values for `${name}` placeholders in migration files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholders(BTreeMap<String, String>);

/// Default for `${ttl_days}`: how long samples and series are kept on modern servers.
pub const DEFAULT_TTL_DAYS: u32 = 30;

impl Placeholders {
    /// The placeholders every shipped file may use: `database`, `cluster` (identifiers, checked),
    /// `keeper_root` (a Keeper path) and `ttl_days`.
    ///
    /// # Errors
    /// A message naming the placeholder whose value is not a plain identifier or path.
    pub fn new(
        database: &str,
        cluster: &str,
        keeper_root: &str,
        ttl_days: u32,
    ) -> Result<Self, String> {
        for (name, v) in [("database", database), ("cluster", cluster)] {
            let ok = v
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(format!(
                    "{name} {v:?} must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*)"
                ));
            }
        }
        let path_ok = keeper_root.starts_with('/')
            && keeper_root
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_-.".contains(c));
        if !path_ok {
            return Err(format!(
                "keeper_root {keeper_root:?} must be an absolute path of [A-Za-z0-9/_.-]"
            ));
        }
        let mut m = BTreeMap::new();
        m.insert("database".into(), database.into());
        m.insert("cluster".into(), cluster.into());
        m.insert(
            "keeper_root".into(),
            keeper_root.trim_end_matches('/').into(),
        );
        m.insert("ttl_days".into(), ttl_days.to_string());
        Ok(Placeholders(m))
    }

    /// Value of one placeholder.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Replaces every `${name}` in `sql`.
    ///
    /// # Errors
    /// The name of the first unknown or unterminated placeholder.
    pub fn apply(&self, sql: &str) -> Result<String, String> {
        let mut out = String::with_capacity(sql.len());
        let mut rest = sql;
        while let Some(at) = rest.find("${") {
            out.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| "unterminated placeholder `${`".to_owned())?;
            let name = &after[..end];
            let value = self
                .get(name)
                .ok_or_else(|| format!("unknown placeholder `${{{name}}}`"))?;
            out.push_str(value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

impl Default for Placeholders {
    fn default() -> Self {
        Placeholders::new("metrics", "chgate", "/clickhouse", DEFAULT_TTL_DAYS)
            .unwrap_or_else(|_| Placeholders(BTreeMap::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn semicolons_in_literals_and_comments_do_not_split() {
        let sql = "-- head; comment\nSELECT 'a;b', `c;d` /* e; */ FROM t;\n\n  SELECT 2 -- x;\n;";
        let s = split(sql).expect("splits");
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[0].sql, "SELECT 'a;b', `c;d` /* e; */ FROM t");
        assert_eq!((s[0].line, s[1].line), (2, 4));
        assert_eq!(s[1].sql, "SELECT 2");
        assert_eq!(s[1].index, 1);
    }

    #[test]
    fn escaped_quotes_stay_inside_the_literal() {
        let s = split(r"SELECT 'it\'s; fine', 'a''b;c'; SELECT 1").expect("splits");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].sql, r"SELECT 'it\'s; fine', 'a''b;c'");
    }

    #[test]
    fn unterminated_things_are_errors_with_offsets() {
        assert_eq!(
            split("SELECT 'abc").expect_err("unterminated").what,
            "string literal"
        );
        let e = split("SELECT 1; /* open").expect_err("unterminated");
        assert_eq!((e.offset, e.what), (10, "block comment"));
    }

    #[test]
    fn comment_only_file_has_no_statements() {
        assert!(split("-- nothing\n/* here */ ;\n").expect("ok").is_empty());
    }

    #[test]
    fn placeholders_are_replaced_and_unknown_ones_refused() {
        let p = Placeholders::new("m1", "c", "/ck/", 7).expect("valid");
        assert_eq!(
            p.apply("${database}.t ON CLUSTER ${cluster} '${keeper_root}/x' ${ttl_days}")
                .expect("ok"),
            "m1.t ON CLUSTER c '/ck/x' 7"
        );
        assert!(p.apply("${nope}").expect_err("unknown").contains("nope"));
        assert!(p.apply("${database").is_err());
        assert_eq!(p.apply("{shard} $x").expect("ok"), "{shard} $x");
    }

    #[test]
    fn placeholder_values_must_be_plain_identifiers() {
        assert!(Placeholders::new("m; DROP", "c", "/r", 1).is_err());
        assert!(Placeholders::new("m", "1c", "/r", 1).is_err());
        assert!(Placeholders::new("m", "c", "r'", 1).is_err());
    }

    fn stmt() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[A-Za-z_][A-Za-z0-9_]{0,8}",
            "'[a-z;` -]{0,6}'",
            "`[a-z; -]{0,6}`",
            "/\\*[a-z; ]{0,6}\\*/",
            "[(),.=+]",
        ];
        // Starts and ends with a word: leading/trailing comments are not part of a statement.
        let word = "[A-Za-z_][A-Za-z0-9_]{0,8}";
        (word, proptest::collection::vec(piece, 0..8), word)
            .prop_map(|(w, p, e)| format!("{w} {} {e}", p.join(" ")))
    }

    proptest! {
        #[test]
        fn split_recovers_joined_statements(stmts in proptest::collection::vec(stmt(), 1..6)) {
            let text = stmts.join(";\n-- c;\n");
            let got = split(&text).expect("valid input");
            let want: Vec<&str> = stmts.iter().map(|s| s.trim()).collect();
            let got: Vec<&str> = got.iter().map(|s| s.sql.as_str()).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn tokenize_never_panics_and_covers_input(s in "\\PC{0,40}") {
            if let Ok(tokens) = tokenize(&s) {
                let joined: String = tokens.iter().map(|t| t.text).collect();
                prop_assert_eq!(joined, s);
            }
        }
    }
}
