//! Loading the real pages: the repository's own copies, or the shared fixture set for
//! pages whose licence does not allow a copy.

use std::path::PathBuf;

/// Where the repository's fixtures are.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[allow(dead_code)]
/// A page by name (without extension): `pages/<name>.html.zst` here, else
/// `shared/fixtures/wechat/pages/<name>.html` in a directory above the checkout.
/// Returns `None` (and says so on stderr) when the shared set is absent.
pub fn page(name: &str) -> Option<Vec<u8>> {
    let compressed = fixtures_dir().join(format!("pages/{name}.html.zst"));
    if compressed.exists() {
        let bytes = std::fs::read(&compressed).expect("read fixture");
        return Some(zstd::decode_all(bytes.as_slice()).expect("decompress fixture"));
    }
    // The shared fixture set sits beside the checkout (in CI: `<clone>/../shared`).
    let relative = format!("shared/fixtures/wechat/pages/{name}.html");
    let found = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join(&relative))
        .find(|path| path.is_file());
    match found {
        Some(path) => Some(std::fs::read(&path).expect("read shared fixture")),
        None => {
            eprintln!("SKIPPED {name}: no {relative} beside the checkout (its licence forbids a copy here)");
            None
        }
    }
}

/// Every page name the repository knows.
#[allow(dead_code)]
pub fn all_page_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir().join("pages"))
        .expect("fixture dir")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.strip_suffix(".html.zst").map(str::to_string))
        .collect();
    names.extend(
        ["article_2020_rendered_dom", "article_2017_browser_saved_shortlink", "verify_captcha_secitptpage"]
            .map(String::from),
    );
    names.sort();
    names
}
