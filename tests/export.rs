//! `mpwatch export` on a demo database: every row once, in CSV and JSON Lines that
//! parse back, rankings as stored, one Markdown file per article; a read-only command
//! (the database file is unchanged).

mod common;

use common::count;
use common::mpwatch_on as mpwatch;

#[test]
fn exports_stream_every_row_and_write_markdown() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    mpwatch(&db, &["demo", "--days", "3", "--accounts", "2"]);
    let before = std::fs::read(&db).unwrap();

    let csv = mpwatch(&db, &["export", "articles", "--format", "csv"]);
    let mut reader = csv::Reader::from_reader(csv.as_slice());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "id");
    assert!(headers.iter().any(|h| h == "reads"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert!(!rows.is_empty(), "the demo stored articles");
    assert_eq!(rows.len() as i64, count(&db, "SELECT count(*) FROM articles"));

    let out = dir.path().join("snapshots.jsonl");
    mpwatch(&db, &["export", "snapshots", "--format", "jsonl", "-o", out.to_str().unwrap()]);
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len() as i64, count(&db, "SELECT count(*) FROM metric_snapshots"));
    assert!(lines.iter().all(|l| l["article_id"].is_i64() && l["observed_at"].is_i64()));

    let rankings = mpwatch(&db, &["export", "rankings", "--index", "nri", "--format", "jsonl"]);
    let rankings: Vec<serde_json::Value> =
        String::from_utf8(rankings).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        rankings.len() as i64,
        count(&db, "SELECT count(*) FROM index_values WHERE period_kind = 'day' AND index_name = 'nri'")
    );

    let md = dir.path().join("md");
    mpwatch(&db, &["export", "markdown", "--dir", md.to_str().unwrap()]);
    let files: Vec<_> = std::fs::read_dir(&md).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len() as i64, count(&db, "SELECT count(*) FROM articles WHERE title IS NOT NULL"));
    let first = std::fs::read_to_string(&files[0]).unwrap();
    assert!(first.starts_with("---\ntitle: \""), "{first:.200}");
    assert!(first.contains("\nurl: \"https://mp.weixin.qq.com/s?__biz="), "{first:.400}");

    // Read-only: the file is as it was.
    assert_eq!(std::fs::read(&db).unwrap(), before);
}
