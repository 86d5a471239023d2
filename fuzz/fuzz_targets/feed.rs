//! RSS / Atom / JSON Feed documents.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = mpwatch_wechat::feed::parse_feed(data);
});
