//! The URL canonicaliser: never panics, and canonical URLs are fixed points.
#![no_main]

use mpwatch_wechat::url::ArticleUrl;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(url @ ArticleUrl::Permanent { .. }) = ArticleUrl::parse(&text) {
        let canonical = url.canonical();
        let again = ArticleUrl::parse(&canonical).expect("a canonical URL parses");
        assert_eq!(again.canonical(), canonical);
        assert_eq!(again.key(), url.key());
    }
});
