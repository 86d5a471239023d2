//! The text rules every parser shares: how entities in string values are decoded, and
//! how whitespace is normalised, so that a title from a `var`, a summary from a feed and
//! the body read from the DOM compare equal when they say the same thing.

/// Decodes HTML entities (`&amp;`, `&#39;`, `&nbsp;`, ...) in a string value taken from
/// JavaScript, JSON or a feed. Text read from the DOM is already decoded by the parser.
pub fn decode_entities(text: &str) -> String {
    if text.contains('&') { html_escape::decode_html_entities(text).into_owned() } else { text.to_string() }
}

/// Collapses runs of whitespace (including no-break spaces) inside each line, trims
/// lines and drops empty ones.
pub fn normalize_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split('\n') {
        let mut words = line.split(|c: char| c.is_whitespace() || c == '\u{a0}').filter(|w| !w.is_empty()).peekable();
        if words.peek().is_none() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        let mut first = true;
        for word in words {
            if !first {
                out.push(' ');
            }
            out.push_str(word);
            first = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_are_decoded_once() {
        assert_eq!(decode_entities("A &amp; B&nbsp;&#39;C&#39;"), "A & B\u{a0}'C'");
        assert_eq!(decode_entities("&amp;lt;"), "&lt;");
        assert_eq!(decode_entities("plain"), "plain");
    }

    #[test]
    fn whitespace_collapses_per_line() {
        assert_eq!(normalize_whitespace("  a \t b\u{a0}\u{a0}c \n\n \u{a0} \n d  "), "a b c\nd");
        assert_eq!(normalize_whitespace(" \n \u{3000} "), "");
    }
}
