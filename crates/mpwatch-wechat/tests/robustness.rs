//! The parsers never panic and stay linear: arbitrary bytes, mutated real pages, and
//! hostile inputs built to trigger quadratic scanning or deep recursion. Speed figures
//! for the same inputs are in the `parse` benchmark, not here.

mod common;

use rand::{Rng as _, SeedableRng as _};

use mpwatch_wechat::{api, feed, page, url};
use proptest::prelude::*;

fn parse_everything(bytes: &[u8]) {
    let parsed = page::parse_page(bytes);
    let _ = parsed.key();
    let _ = parsed.canonical_url();
    let text = String::from_utf8_lossy(bytes);
    let _ = api::parse_profile_ext(&text);
    let _ = api::parse_appmsg_list(&text);
    let _ = api::parse_appmsg_publish(&text);
    let _ = api::parse_appmsgext(&text);
    let _ = api::parse_comments(&text);
    let _ = feed::parse_feed(bytes);
    let _ = url::ArticleUrl::parse(&text);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        parse_everything(&bytes);
    }

    #[test]
    fn javascript_like_soup_never_panics(parts in proptest::collection::vec(prop_oneof![
        Just("var biz = ".to_string()), Just("\"".to_string()), Just("'".to_string()), Just("||".to_string()),
        Just("\\".to_string()), Just("\\x2".to_string()), Just("\\u{".to_string()), Just("htmlDecode(".to_string()),
        Just("cgiDataNew = {".to_string()), Just("{".to_string()), Just("}".to_string()), Just("[".to_string()),
        Just("(".to_string()), Just(":".to_string()), Just(",".to_string()), Just("\n".to_string()),
        Just("<div id=\"js_content\">".to_string()), Just("</div>".to_string()), Just("<script>".to_string()),
        Just("var msg_title = ".to_string()), Just("* 1;".to_string()), "[a-z0-9 ]{0,8}",
    ], 0..200)) {
        parse_everything(parts.concat().as_bytes());
    }
}

/// Deterministic mutations of real pages: truncation, byte flips, splices.
#[test]
fn mutated_real_pages_never_panic() {
    // A seeded generator: the same mutations on every run.
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x9E37_79B9_7F4A_7C15);
    let mut next = move || rng.random::<u64>();
    for name in [
        "article_2018_raw_original",
        "deleted_2025_zh",
        "blocked_violation_2025_law",
        "expired_link_2018",
        "picture_2025_b",
    ] {
        let original = common::page(name).unwrap();
        for _ in 0..40 {
            let mut bytes = original.clone();
            match next() % 3 {
                0 => bytes.truncate((next() as usize) % bytes.len()),
                1 => {
                    for _ in 0..64 {
                        let at = (next() as usize) % bytes.len();
                        bytes[at] = next() as u8;
                    }
                }
                _ => {
                    let from = (next() as usize) % bytes.len();
                    let to = (next() as usize) % bytes.len();
                    let (a, b) = (from.min(to), from.max(to));
                    let chunk = bytes[a..b.min(a + 4096)].to_vec();
                    let at = (next() as usize) % bytes.len();
                    bytes.splice(at..at, chunk);
                }
            }
            parse_everything(&bytes);
        }
    }
}

/// 10 MB inputs shaped to make a naive parser quadratic or overflow its stack. Each
/// must simply finish; `cargo bench -p mpwatch-wechat` times them.
#[test]
fn hostile_ten_megabyte_inputs_finish() {
    for (name, input) in mpwatch_wechat::hostile_inputs(10 * 1024 * 1024) {
        let parsed = page::parse_page(&input);
        if name == "wanted vars, all literal" {
            // Still read correctly: the first non-empty literal wins.
            assert_eq!(parsed.title.as_deref(), Some("t"), "{name}");
        } else {
            assert!(!parsed.kind.is_article(), "{name}: {:?}", parsed.kind);
        }
    }
}

/// 10 MB article bodies shaped to make html5ever quadratic (deep nesting, stray end tags
/// that rescan the stack, tags with thousands of distinct attributes) or merely slow.
/// The page still reads as an article; the body is read up to the parser's bounds.
#[test]
fn hostile_ten_megabyte_article_bodies_finish() {
    for (name, input) in mpwatch_wechat::hostile_article_bodies(10 * 1024 * 1024) {
        let parsed = page::parse_page(&input);
        assert_eq!(parsed.kind, page::PageKind::Article, "{name}");
        assert_eq!(parsed.title.as_deref(), Some("t"), "{name}");
        assert!(parsed.content_html.is_some(), "{name}");
    }
}
