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
//!
//! ```
//! use mpwatch_wechat::url::ArticleUrl;
//! let url = ArticleUrl::parse("http://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&amp;mid=2653567890&amp;idx=1&amp;sn=ab12#rd").unwrap();
//! assert_eq!(url.canonical(), "https://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&mid=2653567890&idx=1&sn=ab12");
//! ```
#![deny(missing_docs)]

pub mod api;
pub mod feed;
pub mod html;
mod js;
pub mod page;
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
