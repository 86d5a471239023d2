//! SQLite's dialect to PostgreSQL's, for the differences that are pure form:
//!
//! - `?N` and `?` placeholders become `$N`;
//! - `INDEXED BY name` (a SQLite planner hint) is dropped;
//! - `max(a, b)` and `min(a, b)` with two or more arguments (SQLite's scalar forms)
//!   become `greatest` and `least` (one argument: the aggregates, unchanged);
//! - `INSERT OR IGNORE INTO ...` becomes `INSERT INTO ... ON CONFLICT DO NOTHING`;
//! - `LIKE` becomes `ILIKE` (SQLite's LIKE ignores the case of ASCII letters);
//! - a unary `+` on a column (SQLite's way to keep a term off an index) is dropped;
//! - `json_each(?N)` (the elements of a JSON array parameter, in a column `value`)
//!   becomes `json_array_elements_text(CAST(CAST($N AS text) AS json))` (the same, as
//!   text).
//!
//! Text in quotes (string literals, quoted identifiers) and comments is left alone.

/// The statement in PostgreSQL's form.
pub fn translate(sql: &str) -> String {
    let tokens = tokenize(sql);
    let mut out = String::with_capacity(sql.len() + 16);
    let mut next_anonymous = 0usize;
    let mut ignore_conflicts = false;
    let mut at = 0;
    while at < tokens.len() {
        let token = &tokens[at];
        match token {
            Token::Word(word) if word.eq_ignore_ascii_case("indexed") && next_word_is(&tokens, at, "by") => {
                // INDEXED BY <name>: dropped.
                at = after_words(&tokens, at, 3);
                continue;
            }
            Token::Word(word)
                if word.eq_ignore_ascii_case("or")
                    && previous_word_is(&tokens, at, "insert")
                    && next_word_is(&tokens, at, "ignore") =>
            {
                // INSERT OR IGNORE: drop "OR IGNORE", add the conflict clause at the end.
                ignore_conflicts = true;
                at = after_words(&tokens, at, 2);
                continue;
            }
            Token::Word(word)
                if (word.eq_ignore_ascii_case("max") || word.eq_ignore_ascii_case("min"))
                    && matches!(tokens.get(at + 1), Some(Token::Other('(')))
                    && top_level_commas(&tokens, at + 1) > 0 =>
            {
                out.push_str(if word.eq_ignore_ascii_case("max") { "greatest" } else { "least" });
            }
            Token::Word(word)
                if word.eq_ignore_ascii_case("json_each")
                    && matches!(tokens.get(at + 1), Some(Token::Other('(')))
                    && matches!(tokens.get(at + 2), Some(Token::Placeholder(_)))
                    && matches!(tokens.get(at + 3), Some(Token::Other(')'))) =>
            {
                // json_each(?N) over a JSON array: its elements as text, in a column `value`.
                let Token::Placeholder(number) = &tokens[at + 2] else { unreachable!("matched above") };
                let number = number.unwrap_or_else(|| {
                    next_anonymous += 1;
                    next_anonymous
                });
                out.push_str(&format!("json_array_elements_text(CAST(CAST(${number} AS text) AS json))"));
                at += 4;
                continue;
            }
            Token::Word(word) if word.eq_ignore_ascii_case("like") => {
                // SQLite's LIKE ignores ASCII case; PostgreSQL's ILIKE ignores case.
                out.push_str("ILIKE");
            }
            Token::Other('+')
                if matches!(tokens.get(at + 1), Some(Token::Word(_))) && previous_is_operand_start(&tokens, at) =>
            {
                // A unary plus on a column (SQLite: "use no index for this term"): dropped.
            }
            Token::Placeholder(number) => {
                let number = match number {
                    Some(number) => *number,
                    None => {
                        next_anonymous += 1;
                        next_anonymous
                    }
                };
                out.push('$');
                out.push_str(&number.to_string());
            }
            other => other.write(&mut out),
        }
        at += 1;
    }
    if ignore_conflicts {
        let trimmed = out.trim_end().trim_end_matches(';').trim_end().len();
        out.truncate(trimmed);
        out.push_str(" ON CONFLICT DO NOTHING");
    }
    out
}

#[derive(Debug)]
enum Token {
    Word(String),
    Placeholder(Option<usize>),
    Quoted(String),
    Space(String),
    Other(char),
}

impl Token {
    fn write(&self, out: &mut String) {
        match self {
            Token::Word(text) | Token::Quoted(text) | Token::Space(text) => out.push_str(text),
            Token::Other(c) => out.push(*c),
            Token::Placeholder(_) => unreachable!("written by translate"),
        }
    }
}

fn tokenize(sql: &str) -> Vec<Token> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        let start = at;
        if c == '\'' || c == '"' || c == '`' {
            at += 1;
            while at < chars.len() {
                if chars[at] == c {
                    // A doubled quote is an escaped one.
                    if chars.get(at + 1) == Some(&c) {
                        at += 2;
                        continue;
                    }
                    at += 1;
                    break;
                }
                at += 1;
            }
            tokens.push(Token::Quoted(chars[start..at].iter().collect()));
        } else if c == '-' && chars.get(at + 1) == Some(&'-') {
            while at < chars.len() && chars[at] != '\n' {
                at += 1;
            }
            tokens.push(Token::Space(chars[start..at].iter().collect()));
        } else if c == '/' && chars.get(at + 1) == Some(&'*') {
            at += 2;
            while at < chars.len() && !(chars[at] == '*' && chars.get(at + 1) == Some(&'/')) {
                at += 1;
            }
            at = (at + 2).min(chars.len());
            tokens.push(Token::Space(chars[start..at].iter().collect()));
        } else if c.is_whitespace() {
            while at < chars.len() && chars[at].is_whitespace() {
                at += 1;
            }
            tokens.push(Token::Space(chars[start..at].iter().collect()));
        } else if c == '?' {
            at += 1;
            while at < chars.len() && chars[at].is_ascii_digit() {
                at += 1;
            }
            let digits: String = chars[start + 1..at].iter().collect();
            tokens.push(Token::Placeholder(digits.parse().ok()));
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            while at < chars.len() && (chars[at].is_alphanumeric() || chars[at] == '_' || chars[at] == '$') {
                at += 1;
            }
            tokens.push(Token::Word(chars[start..at].iter().collect()));
        } else {
            at += 1;
            tokens.push(Token::Other(c));
        }
    }
    tokens
}

/// The position after `words` words from `at`, the spaces between them and one space
/// after them.
fn after_words(tokens: &[Token], mut at: usize, words: usize) -> usize {
    let mut skipped = 0;
    while at < tokens.len() && skipped < words {
        if matches!(tokens[at], Token::Word(_)) {
            skipped += 1;
        }
        at += 1;
    }
    if matches!(tokens.get(at), Some(Token::Space(_))) {
        at += 1;
    }
    at
}

fn next_word_is(tokens: &[Token], at: usize, word: &str) -> bool {
    tokens[at + 1..]
        .iter()
        .find(|token| !matches!(token, Token::Space(_)))
        .is_some_and(|token| matches!(token, Token::Word(next) if next.eq_ignore_ascii_case(word)))
}

fn previous_word_is(tokens: &[Token], at: usize, word: &str) -> bool {
    tokens[..at]
        .iter()
        .rev()
        .find(|token| !matches!(token, Token::Space(_)))
        .is_some_and(|token| matches!(token, Token::Word(previous) if previous.eq_ignore_ascii_case(word)))
}

/// Whether what precedes `at` starts an operand (so a `+` there is unary).
fn previous_is_operand_start(tokens: &[Token], at: usize) -> bool {
    match tokens[..at].iter().rev().find(|token| !matches!(token, Token::Space(_))) {
        None => true,
        Some(Token::Other('(' | ',' | '=' | '<' | '>')) => true,
        Some(Token::Word(word)) => ["where", "and", "or", "on", "not", "select", "by", "when", "then", "else"]
            .iter()
            .any(|keyword| word.eq_ignore_ascii_case(keyword)),
        Some(_) => false,
    }
}

/// Commas at the top level of the parenthesis opening at `open`.
fn top_level_commas(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0;
    let mut commas = 0;
    for token in &tokens[open..] {
        match token {
            Token::Other('(') => depth += 1,
            Token::Other(')') => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Token::Other(',') if depth == 1 => commas += 1,
            _ => {}
        }
    }
    commas
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn placeholders_become_numbered() {
        assert_eq!(translate("SELECT a FROM t WHERE b = ?1 AND c = ?2"), "SELECT a FROM t WHERE b = $1 AND c = $2");
        assert_eq!(translate("VALUES (?, ?, ?)"), "VALUES ($1, $2, $3)");
        assert_eq!(translate("SELECT '?1', \"a?\" FROM t WHERE x = ?1"), "SELECT '?1', \"a?\" FROM t WHERE x = $1");
    }

    #[test]
    fn sqlite_only_forms_are_rewritten() {
        assert_eq!(
            translate("SELECT id FROM work_queue INDEXED BY work_queue_pending WHERE kind = ?1"),
            "SELECT id FROM work_queue WHERE kind = $1"
        );
        assert_eq!(
            translate("SET priority = max(priority, excluded.priority)"),
            "SET priority = greatest(priority, excluded.priority)"
        );
        assert_eq!(translate("SELECT max(id), min(a) FROM t"), "SELECT max(id), min(a) FROM t");
        assert_eq!(translate("SET attempts = max(attempts - 1, 0)"), "SET attempts = greatest(attempts - 1, 0)");
        assert_eq!(translate("SELECT min(coalesce(a, b), 3)"), "SELECT least(coalesce(a, b), 3)");
        assert_eq!(
            translate("INSERT OR IGNORE INTO account_groups (account_id, name) VALUES (?1, ?2);"),
            "INSERT INTO account_groups (account_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        );
        assert_eq!(translate("-- max(a, b) ?\nSELECT 1"), "-- max(a, b) ?\nSELECT 1");
        assert_eq!(translate("WHERE +a.status = 'ok' AND b + c > 1"), "WHERE a.status = 'ok' AND b + c > 1");
        assert_eq!(translate("WHERE title LIKE ?1 ESCAPE '\\'"), "WHERE title ILIKE $1 ESCAPE '\\'");
        assert_eq!(
            translate("WHERE name NOT IN (SELECT value FROM json_each(?1))"),
            "WHERE name NOT IN (SELECT value FROM json_array_elements_text(CAST(CAST($1 AS text) AS json)))"
        );
    }
}
