//! `mpwatch parse` on real pages: the documented JSON keys, kinds, errors.

use std::path::PathBuf;

use assert_cmd::Command;
use predicates::prelude::*;

const KEYS: &[&str] = &[
    "kind",
    "title",
    "account_name",
    "account_username",
    "account_alias",
    "biz",
    "mid",
    "idx",
    "sn",
    "canonical_url",
    "published_at",
    "author",
    "digest",
    "cover_url",
    "copyright",
    "source_url",
    "comment_id",
    "item_show_type",
    "text_chars",
    "image_count",
    "reason",
];

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("crates/mpwatch-wechat/tests/fixtures/pages/{name}.html.zst"));
    zstd::decode_all(std::fs::read(path).unwrap().as_slice()).unwrap()
}

fn parse_json(input: Vec<u8>, extra: &[&str]) -> serde_json::Value {
    let output = Command::cargo_bin("mpwatch")
        .unwrap()
        .args(["parse", "-", "--json"])
        .args(extra)
        .write_stdin(input)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn json_has_exactly_the_documented_keys() {
    let value = parse_json(fixture("article_2025_normal_a"), &[]);
    let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    let mut expected = KEYS.to_vec();
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(value["kind"], "article");
    assert_eq!(value["idx"], 1);
    assert_eq!(value["mid"], "2247504179");
    assert_eq!(value["published_at"], "2025-11-10T04:00:10Z");
    assert_eq!(
        value["canonical_url"],
        "https://mp.weixin.qq.com/s?__biz=MzIyNjMxOTY0NA==&mid=2247504179&idx=1&sn=52c2c5acc9ff4567b10d1408a333693c"
    );
    assert_eq!(value["item_show_type"], 0);
    assert_eq!(value["image_count"], 10);
    assert!(value["text_chars"].as_u64().unwrap() > 1500);
    assert!(value["content_text"].is_null() && value.get("content_text").is_none());
}

#[test]
fn text_flag_adds_the_body() {
    let value = parse_json(fixture("text_2025_a"), &["--text"]);
    assert_eq!(value["kind"], "text");
    assert!(value["content_text"].as_str().unwrap().starts_with("这两年经常听到AI编程要取代程序员的论调"));
}

#[test]
fn message_pages_and_non_html() {
    assert_eq!(parse_json(fixture("deleted_2025_en"), &[])["kind"], "deleted");
    let blocked = parse_json(fixture("blocked_violation_2025_marketing"), &[]);
    assert_eq!(blocked["kind"], "blocked");
    assert!(blocked["reason"].as_str().unwrap().contains("涉嫌过度营销"));
    assert_eq!(parse_json(Vec::new(), &[])["kind"], "unknown");
    assert_eq!(parse_json(b"{\"ret\": 0}".to_vec(), &[])["kind"], "unknown");
    assert_eq!(parse_json(vec![0xff, 0xfe, 0x00, 0x01], &[])["kind"], "unknown");
}

#[test]
fn url_fills_what_a_temporary_link_page_lacks() {
    let page = fixture("article_2018_sogou_templink_video_iframe");
    assert!(parse_json(page.clone(), &[])["sn"].is_null());
    let value = parse_json(
        page,
        &["--url", "https://mp.weixin.qq.com/s?__biz=MzA4ODUzNjAxOA==&mid=2671068104&idx=7&sn=0123abcd"],
    );
    assert_eq!(value["sn"], "0123abcd");
    assert_eq!(value["mid"], "2671068104");
}

#[test]
fn an_unreadable_file_is_one_line_and_exit_1() {
    Command::cargo_bin("mpwatch")
        .unwrap()
        .args(["parse", "/nonexistent/page.html"])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with("error: cannot read /nonexistent/page.html"))
        .stderr(predicate::function(|s: &str| s.trim_end().lines().count() == 1));
}

#[test]
fn text_output_is_readable() {
    Command::cargo_bin("mpwatch")
        .unwrap()
        .args(["parse", "-"])
        .write_stdin(fixture("picture_2025_a"))
        .assert()
        .success()
        .stdout(predicate::str::contains("kind: picture").and(predicate::str::contains("account_name: 36氪")));
}

/// Writes fixtures into a temporary directory as plain HTML files.
fn saved_archive(names: &[&str]) -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let paths = names
        .iter()
        .map(|name| {
            let path = dir.path().join(format!("{name}.html"));
            std::fs::write(&path, fixture(name)).unwrap();
            path
        })
        .collect();
    (dir, paths)
}

#[test]
fn many_files_give_one_json_line_each_with_its_file() {
    let (_dir, paths) = saved_archive(&["article_2025_normal_a", "deleted_2025_zh"]);
    let output = Command::cargo_bin("mpwatch").unwrap().arg("parse").args(&paths).arg("--json").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for (line, path) in lines.iter().zip(&paths) {
        assert_eq!(line["file"], path.display().to_string());
        let mut keys: Vec<&str> = line.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        let mut expected = [KEYS, &["file"]].concat();
        expected.sort();
        assert_eq!(keys, expected);
    }
    assert_eq!(lines[0]["kind"], "article");
    assert_eq!(lines[1]["kind"], "deleted");
    // The same values as parsing each file alone.
    let alone = parse_json(fixture("article_2025_normal_a"), &[]);
    let mut first = lines[0].clone();
    first.as_object_mut().unwrap().remove("file");
    assert_eq!(first, alone);
}

#[test]
fn an_unreadable_file_gives_an_error_line_and_the_rest_go_on() {
    let (dir, paths) = saved_archive(&["text_2025_a", "picture_2025_a"]);
    let missing = dir.path().join("missing.html");
    let output = Command::cargo_bin("mpwatch")
        .unwrap()
        .arg("parse")
        .arg(&paths[0])
        .arg(&missing)
        .arg(&paths[1])
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines[0]["kind"], "text");
    assert_eq!(lines[1]["file"], missing.display().to_string());
    let error = lines[1]["error"].as_str().unwrap();
    assert!(error.starts_with("cannot read ") && error.contains("missing.html"), "{error}");
    assert_eq!(lines[1].as_object().unwrap().len(), 2, "only file and error: {}", lines[1]);
    assert_eq!(lines[2]["kind"], "picture");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.trim(), "error: 1 of 3 files could not be read");
}

#[test]
fn many_files_as_text_are_headed_by_their_names_and_url_wants_one_file() {
    let (_dir, paths) = saved_archive(&["text_2025_a", "deleted_2025_zh"]);
    let output = Command::cargo_bin("mpwatch").unwrap().arg("parse").args(&paths).output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let blocks: Vec<&str> = stdout.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{stdout}");
    assert!(blocks[0].starts_with(&format!("==> {} <==\n", paths[0].display())), "{stdout}");
    assert!(blocks[0].contains("\nkind: text\n"), "{stdout}");
    assert!(blocks[1].starts_with(&format!("==> {} <==\n", paths[1].display())), "{stdout}");
    assert!(blocks[1].contains("\nkind: deleted\n"), "{stdout}");
    Command::cargo_bin("mpwatch")
        .unwrap()
        .arg("parse")
        .args(&paths)
        .args(["--url", "https://mp.weixin.qq.com/s/abc"])
        .assert()
        .code(1)
        .stderr("error: --url applies to one page; give one FILE with it\n");
}

#[test]
fn a_file_over_the_size_limit_is_refused_and_the_flag_raises_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.html");
    // 2 MiB of a page: over a 1 MiB limit, under the default.
    let mut page = fixture("text_2025_a");
    page.resize(2 * 1024 * 1024, b' ');
    std::fs::write(&big, &page).unwrap();
    Command::cargo_bin("mpwatch").unwrap().args(["parse", "--max-mib", "1"]).arg(&big).assert().code(1).stderr(
        format!("error: {} is larger than 1 MiB; not a saved page? (--max-mib raises the limit)\n", big.display()),
    );
    Command::cargo_bin("mpwatch").unwrap().args(["parse", "--max-mib", "3"]).arg(&big).assert().success();
    // Standard input, and an endless one, the same way.
    let endless = std::process::Command::new(env!("CARGO_BIN_EXE_mpwatch"))
        .args(["parse", "--max-mib", "1", "-"])
        .stdin(std::fs::File::open("/dev/zero").unwrap())
        .output()
        .unwrap();
    assert_eq!(endless.status.code(), Some(1));
    let stderr = String::from_utf8(endless.stderr).unwrap();
    assert!(stderr.contains("standard input is larger than 1 MiB"), "{stderr}");
    Command::cargo_bin("mpwatch").unwrap().args(["parse", "--max-mib", "0"]).arg(&big).assert().code(2);
}
