//! JSON answers of the list and count endpoints.
#![no_main]

use mpwatch_wechat::api;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = api::parse_profile_ext(&text);
    let _ = api::parse_appmsg_list(&text);
    let _ = api::parse_appmsg_publish(&text);
    let _ = api::parse_appmsgext(&text);
    let _ = api::parse_comments(&text);
});
