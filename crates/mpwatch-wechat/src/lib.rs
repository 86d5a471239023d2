//! What WeChat serves, turned into typed records. Pure: no network, no database, no
//! clock; every function takes text and returns values.
//!
//! - [`url`]: article URLs in all their forms, and the canonical form.
//!
//! ```
//! use mpwatch_wechat::url::ArticleUrl;
//! let url = ArticleUrl::parse("http://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&amp;mid=2653567890&amp;idx=1&amp;sn=ab12#rd").unwrap();
//! assert_eq!(url.canonical(), "https://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&mid=2653567890&idx=1&sn=ab12");
//! ```
#![deny(missing_docs)]

pub mod url;
