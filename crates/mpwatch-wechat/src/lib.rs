//! What WeChat serves, turned into typed records. Pure: no network, no database, no
//! clock; every function takes bytes or text and returns values, never panics, and runs
//! in time linear in its input.
//!
//! - [`url`]: article URLs in all their forms, and the canonical form.
//! - [`page`]: article pages: classification (article, picture, text, video, audio,
//!   repost, deleted, blocked, unavailable, expired, verification, unknown) and
//!   extraction.
//! - [`api`]: JSON answers of the list and count endpoints, with their `ret` outcomes.
//! - [`feed`]: RSS / Atom / JSON Feed documents of feed tools.
//! - [`html`]: byte ranges of elements in the page, found without parsing it; the body
//!   and other elements found there are read with html5ever (scraper).
//! - [`text`]: entity decoding and the whitespace rule all texts share.
//!
//! ```
//! use mpwatch_wechat::url::ArticleUrl;
//! let url = ArticleUrl::parse("http://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&amp;mid=2653567890&amp;idx=1&amp;sn=ab12#rd").unwrap();
//! assert_eq!(url.canonical(), "https://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&mid=2653567890&idx=1&sn=ab12");
//! ```
#![deny(missing_docs)]

pub mod api;
mod dom;
pub mod feed;
pub mod html;
mod js;
pub mod page;
pub mod text;
pub mod url;

pub use page::{ArticlePage, PageKind, parse_page};

/// Inputs built to make a naive page parser quadratic or overflow its stack, each about
/// `size` bytes: endless `var biz =` lines, one line of unterminated strings, deep
/// nesting in `cgiDataNew`, unclosed tags and comments, quote and escape storms. Used by
/// the robustness tests, the benchmark and the fuzz corpus.
pub fn hostile_inputs(size: usize) -> Vec<(&'static str, Vec<u8>)> {
    let repeat = |unit: &str| unit.repeat(size / unit.len().max(1)).into_bytes();
    let inputs = vec![
        ("var lines", repeat("var biz = opt.biz || window.biz;\n")),
        ("one line of var statements", repeat("var biz = \"")),
        ("escaped quotes on one line", [b"<script>var msg_title = \"".to_vec(), repeat("\\\"")].concat()),
        ("deep nesting", [b"<html>window.cgiDataNew = {a: ".to_vec(), repeat("[{("), b"}".to_vec()].concat()),
        ("unclosed tags", [b"<div id=\"js_content\">".to_vec(), repeat("<div <p <img ")].concat()),
        ("lone angle brackets", repeat("<<<<<<<<<<")),
        ("unclosed comments", [b"<html>".to_vec(), repeat("<!-- ")].concat()),
        ("class name storm", [b"<html>".to_vec(), repeat("weui-msg__title ")].concat()),
        ("nested js_content", [b"<html><div id=\"js_content\">".to_vec(), repeat("<div>")].concat()),
        ("parentheses", [b"<html><script>var biz = ".to_vec(), repeat("(")].concat()),
        ("wanted vars, all literal", repeat("var msg_title = \"t\" || \"\" || \"x\";\nvar biz = \"\" || ")),
    ];
    // Every input looks like HTML, so the parser cannot reject it up front.
    inputs.into_iter().map(|(name, body)| (name, [b"<html><script>\n".to_vec(), body].concat())).collect()
}

/// Article pages, each about `size` bytes, whose `#js_content` is built to make an HTML
/// parser slow: unclosed and deeply nested tags, stray end tags that rescan the stack,
/// tags with thousands of distinct attributes, lone angle brackets, entity storms. Each
/// page has article data, so its body is handed to html5ever. Used by the robustness
/// tests and the benchmark.
pub fn hostile_article_bodies(size: usize) -> Vec<(&'static str, Vec<u8>)> {
    let repeat = |unit: &str| unit.repeat(size / unit.len().max(1));
    let distinct_attributes = |per_tag: usize| {
        let mut body = String::with_capacity(size + 64);
        let mut name = 0usize;
        'tags: while body.len() < size {
            body.push_str("<div");
            for _ in 0..per_tag {
                if body.len() >= size {
                    break 'tags;
                }
                body.push_str(" a");
                body.push_str(&name.to_string());
                name += 1;
            }
            body.push_str(">x</div>");
        }
        body
    };
    let bodies = vec![
        ("body: unclosed tags", repeat("<div <p <img ")),
        ("body: nested divs", repeat("<div>")),
        ("body: nested lists", repeat("<ul><li>")),
        ("body: formatting and stray end tags", repeat("<b>x</p>")),
        ("body: forms and divs", repeat("<form><div>")),
        ("body: one tag of distinct attributes", distinct_attributes(usize::MAX)),
        ("body: tags of 600 distinct attributes", distinct_attributes(600)),
        ("body: tags of 1,500 distinct attributes", distinct_attributes(1_500)),
        ("body: lone angle brackets", repeat("<<<<<<<<<<")),
        ("body: unclosed comment", ["<!-- ", &repeat("<p>x</p>")].concat()),
        ("body: entities", repeat("&amp;&nbsp;&#x4e00;&")),
        ("body: images", repeat("<img data-src=\"https://mmbiz.qpic.cn/x.png\">")),
    ];
    let head = "<html><script>\nvar msg_title = \"t\";\nvar biz = \"MzA5MjkzMTA1Mw==\";\nvar mid = \"1\";\nvar idx = \"1\";\n</script>\n<div id=\"js_content\">";
    bodies.into_iter().map(|(name, body)| (name, [head, &body, "</div></html>"].concat().into_bytes())).collect()
}
