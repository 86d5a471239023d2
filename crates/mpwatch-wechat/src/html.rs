//! Finding elements in the 3 MB article page without parsing it: byte ranges only.
//!
//! A modern page is mostly inline JavaScript; giving all of it to an HTML parser costs
//! tens of milliseconds, and the parser would learn nothing from the scripts. These
//! functions locate the few elements mpwatch reads (`#js_content`, `#js_name`, the
//! repost card, `<meta>` tags) with memchr, in time linear in what they scan, and hand
//! back byte ranges; the crate's `dom` module then reads those ranges with html5ever.

use std::ops::Range;

use memchr::memmem;

/// Longest opening tag looked back over from an attribute; longer ones are not found.
/// Bounding the look-back keeps every search linear on hostile input.
const MAX_TAG_BYTES: usize = 16 * 1024;

/// Most `<meta>` tags [`meta_tags`] returns; real pages have about 25.
const MAX_META_TAGS: usize = 128;

/// Where one element lies in the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementRange {
    /// From the `<` of the opening tag to the end of the closing tag.
    pub outer: Range<usize>,
    /// The inner HTML: from after the opening tag to the `<` of the closing tag.
    pub inner: Range<usize>,
}

/// The element whose opening tag carries `id="<id>"` (any quoting). Its end is found by
/// counting nested tags of the same name (skipping comments, `<script>` and `<style>`);
/// an element never closed ends at the end of the input.
pub fn element_by_id(html: &[u8], id: &str) -> Option<ElementRange> {
    for quoted in [format!("id=\"{id}\""), format!("id='{id}'"), format!("id={id} "), format!("id={id}>")] {
        if let Some(at) = memmem::find(html, quoted.as_bytes()) {
            let window_start = at.saturating_sub(MAX_TAG_BYTES);
            let tag_start = window_start + memchr::memrchr(b'<', &html[window_start..at])?;
            return element_at(html, tag_start);
        }
    }
    None
}

/// Elements whose opening tag names `class` as a whole word after `class=`, in page
/// order. A cheap byte test: the caller confirms the class with a real parse of the
/// element. Each byte of the page is looked at a bounded number of times.
pub fn elements_with_class<'a>(html: &'a [u8], class: &'a str) -> impl Iterator<Item = ElementRange> + 'a {
    let mut tags = TagTracker::default();
    memmem::find_iter(html, class.as_bytes()).filter_map(move |at| {
        let end = at + class.len();
        let delimited_before = at > 0 && matches!(html[at - 1], b'"' | b'\'' | b'=' | b' ' | b'\t' | b'\n' | b'\r');
        let delimited_after = matches!(html.get(end), Some(b'"' | b'\'' | b' ' | b'\t' | b'\n' | b'\r' | b'>'));
        if !delimited_before || !delimited_after {
            return None;
        }
        let tag_start = tags.open_tag_before(html, at)?;
        memmem::find(&html[tag_start..at], b"class=")?;
        element_at(html, tag_start)
    })
}

/// Remembers the last `<` and `>` seen while [`elements_with_class`] moves forward, so
/// that a page full of candidates is scanned once, not once per candidate.
#[derive(Default)]
struct TagTracker {
    scanned_to: usize,
    last_lt: Option<usize>,
    last_gt: Option<usize>,
}

impl TagTracker {
    /// The `<` of the start tag that byte `at` is inside, if it is inside one that began
    /// at most [`MAX_TAG_BYTES`] earlier.
    fn open_tag_before(&mut self, html: &[u8], at: usize) -> Option<usize> {
        let from = self.scanned_to.max(at.saturating_sub(MAX_TAG_BYTES));
        let window = &html[from..at];
        if let Some(offset) = memchr::memrchr(b'<', window) {
            self.last_lt = Some(from + offset);
        }
        if let Some(offset) = memchr::memrchr(b'>', window) {
            self.last_gt = Some(from + offset);
        }
        self.scanned_to = at;
        let lt = self.last_lt.filter(|lt| at - lt <= MAX_TAG_BYTES)?;
        let inside_tag = self.last_gt.is_none_or(|gt| gt < lt);
        (inside_tag && html.get(lt + 1).is_some_and(u8::is_ascii_alphabetic)).then_some(lt)
    }
}

/// The ranges of the element whose opening tag starts at `tag_start`.
fn element_at(html: &[u8], tag_start: usize) -> Option<ElementRange> {
    let name = tag_name(html.get(tag_start + 1..)?)?;
    let open_end = tag_start + memchr::memchr(b'>', html.get(tag_start..)?)? + 1;
    let close = matching_close(html, open_end, name);
    let close_end = memchr::memchr(b'>', &html[close..]).map_or(html.len(), |offset| close + offset + 1);
    Some(ElementRange { outer: tag_start..close_end, inner: open_end..close })
}

/// The ASCII tag name at the start of `bytes` (after `<`).
fn tag_name(bytes: &[u8]) -> Option<&[u8]> {
    let length = bytes.iter().take(16).take_while(|b| b.is_ascii_alphanumeric()).count();
    (length > 0).then(|| &bytes[..length])
}

/// Where the element named `name` that opened just before `from` closes: the `<` of its
/// end tag, or the end of the input.
fn matching_close(html: &[u8], from: usize, name: &[u8]) -> usize {
    let mut depth = 1usize;
    let mut pos = from;
    while let Some(offset) = html.get(pos..).and_then(|rest| memchr::memchr(b'<', rest)) {
        let lt = pos + offset;
        let rest = &html[lt + 1..];
        if rest.starts_with(b"!--") {
            pos = memmem::find(rest, b"-->").map_or(html.len(), |end| lt + 1 + end + 3);
            continue;
        }
        let closing = rest.first() == Some(&b'/');
        let name_bytes = if closing { &rest[1..] } else { rest };
        if let Some(found) = tag_name(name_bytes) {
            // A `</div>` inside a script string must not close the body.
            if found.eq_ignore_ascii_case(b"script") || found.eq_ignore_ascii_case(b"style") {
                if !closing {
                    pos = skip_raw_text(html, lt, found);
                    continue;
                }
            } else if found.eq_ignore_ascii_case(name) {
                let tag_end = memchr::memchr(b'>', rest).map_or(html.len(), |e| lt + 1 + e + 1);
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
    match memmem::find(&html[lt..], &close) {
        Some(offset) => {
            let after = lt + offset;
            memchr::memchr(b'>', &html[after..]).map_or(html.len(), |e| after + e + 1)
        }
        None => html.len(),
    }
}

/// The `<meta ...>` tags of the page's head, in order (at most 128). The
/// head ends at the first `</head>` after the first `<meta`: older pages open with a
/// comment that contains `</head>`, and a modern page's head is 300 KB of scripts
/// followed by a 3 MB body that need not be searched. A tag ends at the first `>`
/// outside a quoted attribute value.
pub fn meta_tags(html: &[u8]) -> impl Iterator<Item = Range<usize>> + '_ {
    let first = memmem::find(html, b"<meta").unwrap_or(html.len());
    let head_end = memmem::find(&html[first..], b"</head>").map_or(html.len(), |offset| first + offset);
    let head = &html[..head_end];
    let mut matches = memmem::find_iter(head, b"<meta");
    let mut resume_at = 0;
    std::iter::from_fn(move || {
        for at in matches.by_ref() {
            let name_ends = head.get(at + 5).is_some_and(|b| b.is_ascii_whitespace() || *b == b'/' || *b == b'>');
            if at < resume_at || !name_ends {
                continue;
            }
            match tag_end(head, at) {
                Some(end) => {
                    resume_at = end;
                    return Some(at..end);
                }
                // An unterminated tag: the `<meta` matches it spans are skipped, which
                // keeps a page of them linear.
                None => resume_at = at + MAX_TAG_BYTES,
            }
        }
        None
    })
    .take(MAX_META_TAGS)
}

/// The end (after `>`) of the tag starting at `start`, honouring quoted attribute values,
/// or `None` when it does not end within [`MAX_TAG_BYTES`].
fn tag_end(html: &[u8], start: usize) -> Option<usize> {
    let limit = html.len().min(start + MAX_TAG_BYTES);
    let mut i = start + 1;
    while i < limit {
        match html[i] {
            b'>' => return Some(i + 1),
            b'=' => {
                i += 1;
                while i < limit && html[i].is_ascii_whitespace() {
                    i += 1;
                }
                if i < limit && matches!(html[i], b'"' | b'\'') {
                    let closing = memchr::memchr(html[i], &html[i + 1..limit])?;
                    i += closing + 2;
                }
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice<'a>(html: &'a [u8], range: &Range<usize>) -> &'a str {
        std::str::from_utf8(&html[range.clone()]).unwrap()
    }

    #[test]
    fn finds_nested_element_by_id() {
        let html = br#"<div class="a"><div id="js_content" style="x"><p>One</p><div>two<div>three</div></div><script>var s = "</div>";</script><!-- </div> --><p>four</p></div><div>after</div></div>"#;
        let element = element_by_id(html, "js_content").unwrap();
        assert_eq!(
            slice(html, &element.inner),
            r#"<p>One</p><div>two<div>three</div></div><script>var s = "</div>";</script><!-- </div> --><p>four</p>"#
        );
        assert!(slice(html, &element.outer).starts_with(r#"<div id="js_content" style="x"><p>"#));
        assert!(slice(html, &element.outer).ends_with("<p>four</p></div>"));
        for quoting in
            [&b"<span id='js_name'>N</span>"[..], b"<span id=js_name>N</span>", b"<span id=js_name class=x>N</span>"]
        {
            let element = element_by_id(quoting, "js_name").unwrap();
            assert_eq!(slice(quoting, &element.inner), "N");
        }
        assert_eq!(element_by_id(html, "js_name"), None);
    }

    #[test]
    fn an_unclosed_element_ends_at_the_end_of_the_input() {
        let html = b"<div id=\"js_content\"><p>open";
        let element = element_by_id(html, "js_content").unwrap();
        assert_eq!(element.inner, 21..html.len());
        assert_eq!(element.outer, 0..html.len());
    }

    #[test]
    fn class_candidates_are_whole_words_inside_a_class_attribute() {
        let html = br#"<p>original_primary_nickname</p><i data-x="original_primary_nickname_x">no</i><strong class="card original_primary_nickname">Name</strong>"#;
        let found: Vec<_> = elements_with_class(html, "original_primary_nickname").collect();
        assert_eq!(found.len(), 1);
        assert_eq!(slice(html, &found[0].outer), r#"<strong class="card original_primary_nickname">Name</strong>"#);
    }

    #[test]
    fn meta_tags_end_outside_quotes() {
        let html = br#"<!--<head></head>--><meta name="a" content="x > y"><metadata><meta property='og:title' content='T'/><meta</head><meta name="in-body" content="no">"#;
        let tags: Vec<_> = meta_tags(html).map(|r| slice(html, &r)).collect();
        assert_eq!(tags, [r#"<meta name="a" content="x > y">"#, "<meta property='og:title' content='T'/>"]);
    }

    #[test]
    fn hostile_fragments_do_not_panic() {
        for html in [
            &b"<div id=\"js_content\"><p>open"[..],
            b"<",
            b"<<<>>>",
            b"<div id='js_content'",
            b"<!-- never",
            b"<meta content=\"",
            b"class=x",
        ] {
            let _ = element_by_id(html, "js_content");
            let _ = elements_with_class(html, "x").count();
            let _ = meta_tags(html).count();
        }
    }
}
