//! Just enough JavaScript to read the values WeChat embeds in its pages.
//!
//! Article metadata sits in lines like `var biz = "" || "MzA5...==";`,
//! `var msg_title = '...'.html(false);`, `var nickname = htmlDecode("...");`,
//! `var ct = "1762747210" * 1;` and in object literals such as
//! `window.cgiDataNew = { title: JsDecode('...'), mid: '2248864730' * 1, ... }`.
//! Only string-literal values count: `var biz = opt.biz || window.biz` says nothing.
//! Everything here runs in time linear in its input and never panics.

/// Reads a JS string literal starting at `bytes[0]` (a `'` or `"`); returns the decoded
/// value and the number of bytes consumed. `None` when `bytes` does not start with a
/// complete literal on one line.
pub fn string_literal(bytes: &[u8]) -> Option<(String, usize)> {
    let quote = *bytes.first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let mut out: Vec<u8> = Vec::new();
    let mut i = 1;
    while i < bytes.len() {
        let b = bytes[i];
        if b == quote {
            return Some((decode_bytes(out), i + 1));
        }
        match b {
            b'\n' | b'\r' => return None,
            b'\\' => {
                let escaped = *bytes.get(i + 1)?;
                i += 2;
                match escaped {
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'0' => out.push(0),
                    b'x' => {
                        let value = hex_value(bytes.get(i..i + 2)?)?;
                        push_char(&mut out, value);
                        i += 2;
                    }
                    b'u' => {
                        if bytes.get(i) == Some(&b'{') {
                            let end = bytes.get(i..)?.iter().take(10).position(|b| *b == b'}')?;
                            let value = hex_value(bytes.get(i + 1..i + end)?)?;
                            push_char(&mut out, value);
                            i += end + 1;
                        } else {
                            let mut value = hex_value(bytes.get(i..i + 4)?)?;
                            i += 4;
                            // A surrogate pair spelled as two escapes.
                            if (0xD800..0xDC00).contains(&value)
                                && bytes.get(i..i + 2) == Some(b"\\u")
                                && let Some(low) = bytes.get(i + 2..i + 6).and_then(hex_value)
                                && (0xDC00..0xE000).contains(&low)
                            {
                                value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00);
                                i += 6;
                            }
                            push_char(&mut out, value);
                        }
                    }
                    b'\n' => {}
                    other => out.push(other),
                }
                continue;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    None
}

fn hex_value(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 6 {
        return None;
    }
    digits.iter().try_fold(0u32, |acc, d| Some(acc * 16 + (*d as char).to_digit(16)?))
}

fn push_char(out: &mut Vec<u8>, value: u32) {
    let c = char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER);
    let mut buffer = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
}

fn decode_bytes(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn skip_spaces(bytes: &[u8], mut i: usize) -> usize {
    while let Some(b) = bytes.get(i) {
        if matches!(b, b' ' | b'\t') {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// Wrapper functions whose single string argument is the value.
const DECODERS: &[&[u8]] = &[b"htmlDecode(", b"JsDecode(", b"decodeURIComponent(", b"unescape("];

/// One operand: a string literal, possibly wrapped in a decoder call or followed by
/// `.html(...)`, `.replace(...)`-free suffixes. Returns the value and bytes consumed.
fn operand(bytes: &[u8], depth: usize) -> Option<(String, usize)> {
    let mut i = skip_spaces(bytes, 0);
    let rest = bytes.get(i..)?;
    if rest.first() == Some(&b'(') {
        // Parentheses nest only a little in real pages; deeper means hostile input.
        if depth >= 4 {
            return None;
        }
        let (value, used) = expression_at(rest.get(1..)?, depth + 1)?;
        let close = skip_spaces(rest, 1 + used);
        if rest.get(close) != Some(&b')') {
            return None;
        }
        return Some((value, i + close + 1));
    }
    if let Some(decoder) = DECODERS.iter().find(|d| rest.starts_with(d)) {
        let start = skip_spaces(rest, decoder.len());
        let (value, used) = string_literal(rest.get(start..)?)?;
        let close = skip_spaces(rest, start + used);
        if rest.get(close) != Some(&b')') {
            return None;
        }
        return Some((value, i + close + 1));
    }
    let (value, used) = string_literal(rest)?;
    i += used;
    // `'…'.html(false)`: WeChat's own HTML-decoding helper.
    if bytes.get(i..).is_some_and(|r| r.starts_with(b".html(")) {
        let close = bytes.get(i..)?.iter().take(16).position(|b| *b == b')')?;
        i += close + 1;
    }
    Some((value, i))
}

/// Evaluates `operand (|| operand)* [* number]`: the first non-empty operand, the way
/// JavaScript's `||` picks it. `None` when the first operand is not a string (an
/// identifier, `null`, arithmetic): such assignments say nothing about the article.
pub fn expression(bytes: &[u8]) -> Option<(String, usize)> {
    expression_at(bytes, 0)
}

fn expression_at(bytes: &[u8], depth: usize) -> Option<(String, usize)> {
    let (mut value, mut i) = operand(bytes, depth)?;
    loop {
        let next = skip_spaces(bytes, i);
        if bytes.get(next..).is_some_and(|r| r.starts_with(b"||")) {
            match operand(bytes.get(next + 2..)?, depth) {
                Some((other, used)) => {
                    if value.is_empty() {
                        value = other;
                    }
                    i = next + 2 + used;
                }
                // `"" || someVariable`: the literal part is all we can know.
                None => break,
            }
        } else if bytes.get(next) == Some(&b'*') {
            // `"123" * 1` converts to a number; the text is the value.
            let mut j = skip_spaces(bytes, next + 1);
            while bytes.get(j).is_some_and(|b| b.is_ascii_digit() || *b == b'.') {
                j += 1;
            }
            i = j;
        } else {
            break;
        }
    }
    Some((value, i))
}

/// A parsed JS object-literal value (the subset WeChat emits in `cgiDataNew`).
#[derive(Debug, Clone, PartialEq)]
pub enum JsValue {
    /// A string (from a literal, a decoder call, or `'123' * 1`).
    Str(String),
    /// `{ key: value, ... }`.
    Object(Vec<(String, JsValue)>),
    /// `[ value, ... ]`.
    Array(Vec<JsValue>),
    /// Anything else (`true`, identifiers, expressions, too-deep nesting).
    Other,
}

impl JsValue {
    /// The field of an object.
    pub fn get(&self, key: &str) -> Option<&JsValue> {
        match self {
            JsValue::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string value, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            JsValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A string field of an object.
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(JsValue::as_str)
    }

    /// The items of an array.
    pub fn items(&self) -> &[JsValue] {
        match self {
            JsValue::Array(items) => items,
            _ => &[],
        }
    }
}

/// Nesting beyond this is skipped rather than parsed (adversarial input).
const MAX_DEPTH: usize = 24;

/// Parses an object literal starting at `bytes[0] == b'{'`. Returns the value and the
/// bytes consumed (the whole literal when it is well-formed, else what was read).
pub fn object_literal(bytes: &[u8]) -> Option<(JsValue, usize)> {
    if bytes.first() != Some(&b'{') {
        return None;
    }
    let mut parser = ObjectParser { bytes, pos: 0 };
    let value = parser.value(0);
    Some((value, parser.pos))
}

struct ObjectParser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl ObjectParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace_and_comments(&mut self) {
        while let Some(b) = self.peek() {
            if b.is_ascii_whitespace() {
                self.pos += 1;
            } else if self.bytes.get(self.pos..).is_some_and(|r| r.starts_with(b"//")) {
                while self.peek().is_some_and(|b| b != b'\n') {
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    fn value(&mut self, depth: usize) -> JsValue {
        self.skip_whitespace_and_comments();
        match self.peek() {
            Some(b'{') if depth < MAX_DEPTH => self.object(depth + 1),
            Some(b'[') if depth < MAX_DEPTH => self.array(depth + 1),
            Some(b'{') | Some(b'[') => {
                self.skip_balanced();
                JsValue::Other
            }
            _ => {
                let rest = self.bytes.get(self.pos..).unwrap_or_default();
                if let Some((value, used)) = expression(rest) {
                    self.pos += used;
                    self.skip_to_separator();
                    JsValue::Str(value)
                } else {
                    self.skip_to_separator();
                    JsValue::Other
                }
            }
        }
    }

    fn object(&mut self, depth: usize) -> JsValue {
        self.pos += 1; // '{'
        let mut fields = Vec::new();
        loop {
            self.skip_whitespace_and_comments();
            match self.peek() {
                None => break,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                Some(b',') => {
                    self.pos += 1;
                    continue;
                }
                _ => {}
            }
            let Some(key) = self.key() else {
                self.skip_to_separator();
                if self.peek() == Some(b',') {
                    self.pos += 1;
                    continue;
                }
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                }
                break;
            };
            self.skip_whitespace_and_comments();
            if self.peek() != Some(b':') {
                self.skip_to_separator();
                continue;
            }
            self.pos += 1;
            let value = self.value(depth);
            fields.push((key, value));
        }
        JsValue::Object(fields)
    }

    fn array(&mut self, depth: usize) -> JsValue {
        self.pos += 1; // '['
        let mut items = Vec::new();
        loop {
            self.skip_whitespace_and_comments();
            match self.peek() {
                None => break,
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                Some(b',') => {
                    self.pos += 1;
                    continue;
                }
                _ => {}
            }
            let before = self.pos;
            items.push(self.value(depth));
            if self.pos == before {
                // Nothing consumed: stop rather than loop forever.
                self.pos += 1;
            }
        }
        JsValue::Array(items)
    }

    fn key(&mut self) -> Option<String> {
        let rest = self.bytes.get(self.pos..)?;
        if let Some((key, used)) = string_literal(rest) {
            self.pos += used;
            return Some(key);
        }
        let length = rest.iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'_' || **b == b'$').count();
        if length == 0 {
            return None;
        }
        self.pos += length;
        Some(String::from_utf8_lossy(&rest[..length]).into_owned())
    }

    /// Moves to the next `,` `}` or `]` at this nesting level, stepping over strings
    /// and balanced brackets.
    fn skip_to_separator(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b',' | b'}' | b']' => return,
                b'{' | b'[' | b'(' => self.skip_balanced(),
                b'"' | b'\'' => self.skip_string(),
                _ => self.pos += 1,
            }
        }
    }

    fn skip_string(&mut self) {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        match string_literal(rest) {
            Some((_, used)) => self.pos += used,
            // Unterminated: nothing on this line can close it, so skip the line (this
            // keeps hostile input linear instead of rescanning from every quote).
            None => self.pos += memchr::memchr(b'\n', rest).unwrap_or(rest.len()).max(1),
        }
    }

    /// Skips a bracketed region iteratively (no recursion, so depth is harmless).
    fn skip_balanced(&mut self) {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'{' | b'[' | b'(' => {
                    depth += 1;
                    self.pos += 1;
                }
                b'}' | b']' | b')' => {
                    self.pos += 1;
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return;
                    }
                }
                b'"' | b'\'' => self.skip_string(),
                _ => self.pos += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str) -> Option<String> {
        expression(text.as_bytes()).map(|(value, _)| value)
    }

    #[test]
    fn literals_and_alternatives() {
        assert_eq!(eval(r#""MzA5" || """#).as_deref(), Some("MzA5"));
        assert_eq!(eval(r#""" || "" || "2651688808";"#).as_deref(), Some("2651688808"));
        assert_eq!(eval(r#""1762747210" * 1;"#).as_deref(), Some("1762747210"));
        assert_eq!(eval(r#"'标题'.html(false);"#).as_deref(), Some("标题"));
        assert_eq!(eval(r#"htmlDecode("轩辕的编程宇宙");"#).as_deref(), Some("轩辕的编程宇宙"));
        assert_eq!(eval(r#"JsDecode('a\x26amp;b\x0a')"#).as_deref(), Some("a&amp;b\n"));
        assert_eq!(eval(r#""" || someVariable"#).as_deref(), Some(""));
        assert_eq!(eval(r#"("" * 1) && x"#).as_deref(), Some(""));
    }

    #[test]
    fn non_literals_say_nothing() {
        for text in ["opt.biz || window.biz;", "null;", "start + end >> 1;", "[biz, sn]", ""] {
            assert_eq!(eval(text), None, "{text}");
        }
    }

    #[test]
    fn escapes_decode() {
        assert_eq!(eval(r#""\u4e2d\u6587 \u{1F600} \ud83d\ude00 \'q\' \\""#).as_deref(), Some("中文 😀 😀 'q' \\"));
        assert_eq!(eval("\"unterminated"), None);
        assert_eq!(eval("\"bad \\xZZ\""), None);
    }

    #[test]
    fn object_literals_with_nesting() {
        let text = r#"{
            base_resp: { ret: '0' * 1, errmsg: JsDecode('ok') },
            title: JsDecode('标题'),
            mid: '2248864730' * 1,
            flag: true,
            list: [ { cdn_url: JsDecode('https://a/1') }, { cdn_url: JsDecode('https://a/2') }, ],
            fn: function () { return { x: 1 }; },
            'quoted': "q",
        };"#;
        let (value, _) = object_literal(text.as_bytes()).unwrap();
        assert_eq!(value.str_field("title"), Some("标题"));
        assert_eq!(value.str_field("mid"), Some("2248864730"));
        assert_eq!(value.get("base_resp").unwrap().str_field("errmsg"), Some("ok"));
        let urls: Vec<_> = value.get("list").unwrap().items().iter().filter_map(|i| i.str_field("cdn_url")).collect();
        assert_eq!(urls, vec!["https://a/1", "https://a/2"]);
        assert_eq!(value.str_field("quoted"), Some("q"));
        assert_eq!(value.get("flag"), Some(&JsValue::Other));
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let deep = format!("{{a: {}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
        let (value, _) = object_literal(deep.as_bytes()).unwrap();
        assert!(value.get("a").is_some());
        let unbalanced = format!("{{a: {}", "{[(".repeat(50_000));
        assert!(object_literal(unbalanced.as_bytes()).is_some());
        let parens = format!("{}\"x\"{}", "(".repeat(100_000), ")".repeat(100_000));
        assert_eq!(eval(&parens), None);
    }
}
