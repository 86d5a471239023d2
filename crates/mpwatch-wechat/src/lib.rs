//! What WeChat serves, turned into typed records. Pure: no network, no database, no
//! clock; every function takes bytes or text and returns values, never panics, and runs
//! in time linear in its input.
//!
//! - [`url`]: article URLs in all their forms, and the canonical form.
//! - [`page`]: article pages: classification (article, picture, text, video, audio,
//!   repost, deleted, blocked, unavailable, expired, verification, unknown) and
//!   extraction.
//!
//! ```
//! use mpwatch_wechat::url::ArticleUrl;
//! let url = ArticleUrl::parse("http://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&amp;mid=2653567890&amp;idx=1&amp;sn=ab12#rd").unwrap();
//! assert_eq!(url.canonical(), "https://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&mid=2653567890&idx=1&sn=ab12");
//! ```
#![deny(missing_docs)]

pub mod html;
mod js;
pub mod page;
pub mod url;

pub use page::{ArticlePage, PageKind, parse_page};

/// `gh_` or `wxid_` ids, as pages spell an account's original id.
pub fn is_account_username(text: &str) -> bool {
    mpwatch_core::domain::is_username(text)
}
