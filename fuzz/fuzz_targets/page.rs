//! Article pages: classification and extraction must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let page = mpwatch_wechat::parse_page(data);
    let _ = page.canonical_url();
});
