//! OPML import (`mpwatch account import-opml`): text to the binary's OPML reader never
//! panics and never overflows the stack, whatever its nesting (bounded at 64 levels on
//! XML tokens before the recursive parser runs). The reader lives in the binary crate,
//! so it is included here by path.
#![no_main]

#[allow(dead_code)]
#[path = "../../src/opml_io.rs"]
mod opml_io;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(accounts) = opml_io::parse(&text) {
        // Every account it reads has a source to crawl.
        assert!(accounts.iter().all(|account| !account.sources.is_empty()));
    }
});
