//! Targeted HTML reading: find one element, read an attribute, turn a fragment into
//! text. A full DOM parse of a 3 MB article page costs milliseconds; these functions
//! look only where the data is, in time linear in what they read, and never panic.

use memchr::memmem;

/// Longest tag mpwatch reads; longer ones are treated as unclosed. Bounding look-back
/// and look-ahead keeps every function linear on hostile input.
const MAX_TAG_BYTES: usize = 16 * 1024;

/// The `<` that opens the tag containing byte `at`, looking back at most one tag length.
fn tag_start_before(html: &[u8], at: usize) -> Option<usize> {
    let window_start = at.saturating_sub(MAX_TAG_BYTES);
    memchr::memrchr(b'<', html.get(window_start..at)?).map(|offset| window_start + offset)
}

/// Decodes HTML entities (`&amp;`, `&#39;`, `&nbsp;`, ...).
pub fn decode_entities(text: &str) -> String {
    if text.contains('&') { html_escape::decode_html_entities(text).into_owned() } else { text.to_string() }
}

/// The inner HTML range (`start..end`) of the element whose opening tag carries
/// `id="<id>"` (any quoting), found by counting nested tags of the same name.
/// An element never closed ends at the end of the input.
pub fn element_by_id(html: &[u8], id: &str) -> Option<std::ops::Range<usize>> {
    for quoted in [format!("id=\"{id}\""), format!("id='{id}'"), format!("id={id} "), format!("id={id}>")] {
        if let Some(at) = memmem::find(html, quoted.as_bytes()) {
            return element_at_attribute(html, at);
        }
    }
    None
}

/// The inner range of the element whose opening tag contains byte `at`.
fn element_at_attribute(html: &[u8], at: usize) -> Option<std::ops::Range<usize>> {
    let tag_start = tag_start_before(html, at)?;
    let name = tag_name(html.get(tag_start + 1..)?)?;
    let open_end = tag_start + memchr::memchr(b'>', html.get(tag_start..)?)? + 1;
    let end = matching_close(html, open_end, name);
    Some(open_end..end)
}

/// The lowercase ASCII tag name at the start of `bytes` (after `<`).
fn tag_name(bytes: &[u8]) -> Option<&[u8]> {
    let length = bytes.iter().take(16).take_while(|b| b.is_ascii_alphanumeric()).count();
    (length > 0).then(|| &bytes[..length])
}

/// Where the element named `name` that opened just before `from` closes.
fn matching_close(html: &[u8], from: usize, name: &[u8]) -> usize {
    let mut depth = 1usize;
    let mut pos = from;
    while let Some(offset) = html.get(pos..).and_then(|rest| memchr::memchr(b'<', rest)) {
        let lt = pos + offset;
        let rest = &html[lt + 1..];
        if rest.starts_with(b"!--") {
            pos = memmem::find(rest, b"-->").map(|end| lt + 1 + end + 3).unwrap_or(html.len());
            continue;
        }
        let closing = rest.first() == Some(&b'/');
        let name_bytes = if closing { &rest[1..] } else { rest };
        if let Some(found) = tag_name(name_bytes) {
            if found.eq_ignore_ascii_case(b"script") || found.eq_ignore_ascii_case(b"style") {
                if !closing {
                    pos = skip_raw_text(html, lt, found);
                    continue;
                }
            } else if found.eq_ignore_ascii_case(name) {
                let tag_end = memchr::memchr(b'>', rest).map(|e| lt + 1 + e + 1).unwrap_or(html.len());
                let self_closing = tag_end >= 2 && html.get(tag_end - 2) == Some(&b'/');
                if closing {
                    depth -= 1;
                    if depth == 0 {
                        return lt;
                    }
                } else if !self_closing {
                    depth += 1;
                }
                pos = tag_end;
                continue;
            }
        }
        pos = lt + 1;
    }
    html.len()
}

/// Skips a `<script>` / `<style>` element starting at `lt`; returns where it ends.
fn skip_raw_text(html: &[u8], lt: usize, name: &[u8]) -> usize {
    let mut close = b"</".to_vec();
    close.extend(name.iter().map(u8::to_ascii_lowercase));
    let lowered_match = memmem::find(&html[lt..], &close);
    match lowered_match {
        Some(offset) => {
            let after = lt + offset;
            memchr::memchr(b'>', &html[after..]).map(|e| after + e + 1).unwrap_or(html.len())
        }
        None => html.len(),
    }
}

/// The opening tag (from `<`) of the element whose inner HTML starts at `inner_start`.
pub fn tag_containing(html: &[u8], inner_start: usize) -> Option<&[u8]> {
    let tag_start = tag_start_before(html, inner_start.checked_sub(1)?)?;
    html.get(tag_start..inner_start)
}

/// The value of attribute `name` in the tag that starts at `tag` (`<...>`).
pub fn attribute(tag: &[u8], name: &str) -> Option<String> {
    let tag = &tag[..tag.len().min(MAX_TAG_BYTES)];
    let end = memchr::memchr(b'>', tag).unwrap_or(tag.len());
    let tag = &tag[..end];
    let mut search = 0;
    while let Some(offset) = memmem::find(&tag[search..], name.as_bytes()) {
        let at = search + offset;
        search = at + name.len();
        let before_ok = at == 0 || tag[at - 1].is_ascii_whitespace();
        let mut i = at + name.len();
        while tag.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if !before_ok || tag.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        while tag.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        let value = match tag.get(i) {
            Some(quote @ (b'"' | b'\'')) => {
                let rest = &tag[i + 1..];
                let close = memchr::memchr(*quote, rest).unwrap_or(rest.len());
                &rest[..close]
            }
            Some(_) => {
                let rest = &tag[i..];
                let close = rest.iter().position(|b| b.is_ascii_whitespace() || *b == b'>').unwrap_or(rest.len());
                &rest[..close]
            }
            None => return None,
        };
        return Some(decode_entities(&String::from_utf8_lossy(value)));
    }
    None
}

/// `content` of `<meta property="X">` or `<meta name="X">`.
pub fn meta_content(html: &[u8], key: &str) -> Option<String> {
    for pattern in [format!("property=\"{key}\""), format!("name=\"{key}\"")] {
        let finder = memmem::Finder::new(pattern.as_bytes());
        for at in finder.find_iter(html) {
            let Some(tag_start) = tag_start_before(html, at) else { continue };
            if !html[tag_start..].starts_with(b"<meta") {
                continue;
            }
            if let Some(content) = attribute(&html[tag_start..], "content") {
                return Some(content);
            }
        }
    }
    None
}

/// The text of the first element whose class list contains `class` (e.g.
/// `weui-msg__title`), whitespace-normalised.
pub fn text_by_class(html: &[u8], class: &str) -> Option<String> {
    let finder = memmem::Finder::new(class.as_bytes());
    for at in finder.find_iter(html) {
        let Some(tag_start) = tag_start_before(html, at) else { continue };
        // The class must be inside this tag's class attribute.
        let Some(classes) = attribute(&html[tag_start..], "class") else { continue };
        if !classes.split_ascii_whitespace().any(|c| c == class) {
            continue;
        }
        let Some(range) = element_at_attribute(html, at) else { continue };
        let text = fragment_to_text(&html[range]).text;
        if !text.is_empty() {
            return Some(text);
        }
    }
    None
}

/// Text and images of an HTML fragment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FragmentText {
    /// Text with one line per block, whitespace collapsed, entities decoded.
    pub text: String,
    /// `data-src` (else `src`) of each `<img>`, http(s) only, in order.
    pub images: Vec<String>,
}

const BLOCK_TAGS: &[&[u8]] = &[
    b"p",
    b"div",
    b"section",
    b"br",
    b"h1",
    b"h2",
    b"h3",
    b"h4",
    b"h5",
    b"h6",
    b"li",
    b"ul",
    b"ol",
    b"blockquote",
    b"pre",
    b"tr",
    b"table",
    b"figure",
    b"figcaption",
    b"hr",
    b"header",
    b"footer",
    b"article",
];

/// Turns an HTML fragment into text: tags removed, `<script>`/`<style>` and comments
/// skipped, a line break per block element, entities decoded, runs of whitespace
/// collapsed, empty lines dropped.
pub fn fragment_to_text(html: &[u8]) -> FragmentText {
    let mut raw = String::with_capacity(html.len() / 4);
    let mut images = Vec::new();
    let mut pos = 0;
    while pos < html.len() {
        let Some(offset) = memchr::memchr(b'<', &html[pos..]) else {
            push_text(&mut raw, &html[pos..]);
            break;
        };
        let lt = pos + offset;
        push_text(&mut raw, &html[pos..lt]);
        let rest = &html[lt + 1..];
        if rest.starts_with(b"!--") {
            pos = memmem::find(rest, b"-->").map(|end| lt + 1 + end + 3).unwrap_or(html.len());
            continue;
        }
        let closing = rest.first() == Some(&b'/');
        let name = tag_name(if closing { &rest[1..] } else { rest });
        let tag_end = match name {
            Some(_) => memchr::memchr(b'>', rest).map(|e| lt + 1 + e + 1).unwrap_or(html.len()),
            None => lt + 1,
        };
        match name {
            Some(name) if !closing && (name.eq_ignore_ascii_case(b"script") || name.eq_ignore_ascii_case(b"style")) => {
                pos = skip_raw_text(html, lt, name);
                continue;
            }
            Some(name) if name.eq_ignore_ascii_case(b"img") && !closing => {
                let tag = &html[lt..tag_end];
                let source = attribute(tag, "data-src").or_else(|| attribute(tag, "src"));
                if let Some(url) = source.filter(|u| u.starts_with("http://") || u.starts_with("https://")) {
                    images.push(url);
                }
            }
            Some(name) if BLOCK_TAGS.iter().any(|block| block.eq_ignore_ascii_case(name)) => raw.push('\n'),
            Some(_) => {}
            // A lone `<` is text.
            None => {
                raw.push('<');
                pos = lt + 1;
                continue;
            }
        }
        pos = tag_end;
    }
    FragmentText { text: normalize_whitespace(&decode_entities(&raw)), images }
}

fn push_text(out: &mut String, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    // Source newlines are layout, not text: they become spaces.
    for chunk in String::from_utf8_lossy(bytes).split(['\n', '\r']) {
        out.push_str(chunk);
        out.push(' ');
    }
    out.pop();
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
    fn finds_nested_element_by_id() {
        let html = br#"<div class="a"><div id="js_content" style="x"><p>One <b>two</b></p><div>three<div>four</div></div><script>var s = "</div>";</script><img data-src="https://img/1.png" src="data:x"/><p>five &amp; six&nbsp;seven</p></div><div>after</div></div>"#;
        let range = element_by_id(html, "js_content").unwrap();
        let fragment = fragment_to_text(&html[range]);
        assert_eq!(fragment.text, "One two\nthree\nfour\nfive & six seven");
        assert_eq!(fragment.images, vec!["https://img/1.png"]);
    }

    #[test]
    fn attributes_and_meta() {
        let html =
            br#"<head><meta property="og:title" content="A &amp; B" /><meta name="author" content='Ann'></head>"#;
        assert_eq!(meta_content(html, "og:title").as_deref(), Some("A & B"));
        assert_eq!(meta_content(html, "author").as_deref(), Some("Ann"));
        assert_eq!(meta_content(html, "og:image"), None);
    }

    #[test]
    fn text_by_class_matches_whole_class_names() {
        let html = r#"<div class="weui-msg__title-x">no</div><h2 class="weui-msg__title warn">  该内容
            已被发布者删除 </h2>"#;
        assert_eq!(text_by_class(html.as_bytes(), "weui-msg__title").as_deref(), Some("该内容 已被发布者删除"));
    }

    #[test]
    fn unclosed_and_hostile_fragments_do_not_panic() {
        for html in [&b"<div id=\"js_content\"><p>open"[..], b"<", b"<<<>>>", b"<div id='js_content'", b"<!-- never"] {
            if let Some(range) = element_by_id(html, "js_content") {
                let _ = fragment_to_text(&html[range]);
            }
            let _ = fragment_to_text(html);
        }
    }
}
