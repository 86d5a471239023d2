//! What a feed item says: the counts line, and the body as HTML (every text escaped).

use jiff::tz::TimeZone;
use maud::{PreEscaped, html};

use super::items::{Counts, FeedItem};

/// `text` without the characters XML 1.0 forbids (C0 controls but tab and line breaks,
/// U+FFFE, U+FFFF). Pages carry them now and then (`&#8;`, `\x08` in a script string);
/// escaping cannot make them legal, so a feed with one would not be XML at all.
pub fn xml_safe(text: String) -> String {
    let forbidden = |c: char| (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{fffe}' | '\u{ffff}');
    if text.contains(forbidden) { text.replace(forbidden, "") } else { text }
}

/// A count as WeChat shows it: "10万+" at the cap, digits grouped otherwise.
pub fn count_text(value: Option<i64>, capped: bool) -> String {
    match value {
        None => "–".to_string(),
        Some(_) if capped => "10万+".to_string(),
        Some(value) => group_digits(value),
    }
}

/// 1234567 → "1,234,567".
pub fn group_digits(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0 { format!("-{out}") } else { out }
}

/// `YYYY-MM-DD HH:MM` in `tz`, with the zone's abbreviation-free offset.
pub fn local_time(at: i64, tz: &TimeZone) -> String {
    jiff::Timestamp::from_second(at)
        .map(|t| t.to_zoned_datetime(tz.clone()).strftime("%Y-%m-%d %H:%M %:z").to_string())
        .unwrap_or_else(|_| at.to_string())
}

/// "阅读 12,345 · 赞 12 · 在看 3 · 转发 4 · 评论 5 (2026-11-28 10:00 +08:00)".
pub fn counts_line(counts: &Counts, tz: &TimeZone) -> String {
    format!(
        "阅读 {} · 赞 {} · 在看 {} · 转发 {} · 评论 {} ({})",
        count_text(counts.reads, counts.reads_capped),
        count_text(counts.likes, false),
        count_text(counts.wows, false),
        count_text(counts.shares, false),
        count_text(counts.comments, false),
        local_time(counts.observed_at, tz)
    )
}

/// The item's content as HTML: the counts line, the cover, then the body: the stored
/// clean HTML (with its images), else the text's paragraphs, else the digest.
pub fn item_html(item: &FeedItem, tz: &TimeZone) -> String {
    let cover = item.cover_url.as_deref().filter(|url| url.starts_with("https://") || url.starts_with("http://"));
    html! {
        p {
            @match &item.counts {
                Some(counts) => (counts_line(counts, tz)),
                None => "No counts yet.",
            }
            @if item.status != "ok" { " · " (item.status) }
        }
        @if let Some(cover) = cover { p { img src=(cover) alt="" referrerpolicy="no-referrer"; } }
        (body(item.body_html.as_deref(), item.content_text.as_deref(), item.digest.as_deref()))
        p { a href=(item.url) { "Read on WeChat" } }
    }
    .into_string()
}

/// An article's body for a page or a feed. The stored HTML is mpwatch's own clean
/// rendition (an allowlist of elements, only http(s) `href` and `src`, every text
/// escaped when it was made), so it is written as it is; pages also forbid every script
/// by their Content-Security-Policy, should anyone edit the table by hand.
pub fn body(html: Option<&str>, text: Option<&str>, digest: Option<&str>) -> maud::Markup {
    if let Some(html) = html.filter(|html| !html.trim().is_empty()) {
        return PreEscaped(html.to_string());
    }
    html! {
        @match text.filter(|text| !text.trim().is_empty()) {
            Some(text) => {
                @for paragraph in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
                    p { (paragraph) }
                }
            }
            None => {
                @if let Some(digest) = digest { p { (digest) } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_xml_forbids_are_dropped() {
        assert_eq!(xml_safe("a\u{8}b\u{0}c\td\ne\u{fffe}".to_string()), "abc\td\ne");
        assert_eq!(xml_safe("中文 & <b>".to_string()), "中文 & <b>");
    }

    #[test]
    fn counts_read_as_wechat_shows_them() {
        assert_eq!(group_digits(1_234_567), "1,234,567");
        assert_eq!(group_digits(999), "999");
        assert_eq!(count_text(Some(100_001), true), "10万+");
        assert_eq!(count_text(None, false), "–");
    }
}
