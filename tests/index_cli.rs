//! `mpwatch index calc`, `mpwatch index`, `mpwatch report` in four formats and `mpwatch
//! chart` in both, on a 60-day database built through the store's API.

use std::path::Path;

use assert_cmd::Command;
use mpwatch_core::{ArticleKey, ArticleStatus, Biz};
use mpwatch_store::accounts::NewAccount;
use mpwatch_store::articles::{ArticleRecord, Snapshot};
use mpwatch_store::{Store, StoreOptions};

/// 2025-09-01 00:00 Beijing.
const START: i64 = 1_756_656_000;
const DAY: i64 = 86_400;

fn build(path: &Path) {
    use base64::Engine as _;
    let mut store = Store::open(path, &StoreOptions::default()).unwrap();
    store
        .write(|tx| {
            for (account, name) in ["环球科学", "科研圈", "中科院之声"].iter().enumerate() {
                let biz = Biz::parse(
                    &base64::engine::general_purpose::STANDARD.encode((3_100_000_000u64 + account as u64).to_string()),
                )
                .unwrap();
                tx.add_account(
                    &NewAccount {
                        nickname: Some(name.to_string()),
                        groups: vec!["publishers".into()],
                        ..NewAccount::with_biz(biz.clone())
                    },
                    START,
                )?;
                for day in 0..60i64 {
                    for idx in 1..=2u32 {
                        let published = START + day * DAY + 9 * 3600 + account as i64 * 600;
                        let record = ArticleRecord {
                            url: format!("https://mp.weixin.qq.com/s?__biz={biz}&mid={day}&idx={idx}"),
                            key: Some(ArticleKey { biz: biz.clone(), mid: 1000 + day as u64, idx }),
                            published_at: Some(published),
                            status: ArticleStatus::Ok,
                            ..ArticleRecord::default()
                        };
                        let (id, _) = tx.upsert_article(&record, published)?;
                        for (age, share) in [(DAY + 600, 0.8), (7 * DAY + 600, 1.0)] {
                            let reads = ((1000 + 700 * account as i64 + (day * 37) % 500) as f64 * share
                                / f64::from(idx)) as i64;
                            tx.insert_snapshot(
                                id,
                                &Snapshot {
                                    observed_at: published + age,
                                    rung_seconds: Some(age),
                                    reads: Some(reads),
                                    reads_capped: false,
                                    likes: Some(reads / 30),
                                    wows: Some(reads / 80),
                                    shares: Some(reads / 20),
                                    comments: Some(reads / 200),
                                    source: "test".into(),
                                },
                            )?;
                        }
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}

fn mpwatch(db: &Path) -> Command {
    let mut cmd = Command::cargo_bin("mpwatch").unwrap();
    cmd.env_remove("MPWATCH_CONFIG").env_remove("RUST_LOG").current_dir(db.parent().unwrap()).arg("--db").arg(db);
    cmd
}

fn run(db: &Path, args: &[&str]) -> String {
    let output = mpwatch(db).args(args).output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn index_calc_reproduces_the_cross_check_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let reads = ["R=70000", "n=14", "d=7", "Rt=50000", "Rmax=12000", "Z=700", "Zt=500", "Zmax=150"];
    let likes = ["L=1400", "Lt=1000", "Lmax=300"];
    let shares = ["RE=2100", "REt=1500", "REmax=400"];
    for (formula, expected, keys) in [
        ("wci-v11", 717.8060314, reads.to_vec()),
        ("wci-v13", 735.8162433, reads.to_vec()),
        ("wci-v14.2-noshare", 766.6916074, [&reads[..], &likes].concat()),
        ("wci-v14.2", 882.8037785, [&reads[..], &likes, &shares].concat()),
    ] {
        let out = run(&db, &[&["index", "calc", formula, "--json"][..], &keys].concat());
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["formula"], formula);
        assert!((value["value"].as_f64().unwrap() - expected).abs() < 1e-6, "{formula}: {out}");
    }
    let out = run(
        &db,
        &[
            "index",
            "calc",
            "nri",
            "days=7",
            "readSum=70000",
            "readMax=12000",
            "readAvg=5000",
            "headline=50000",
            "likeSum=1400",
        ],
    );
    assert!((out.trim().parse::<f64>().unwrap() - 720.8275151).abs() < 1e-6, "{out}");
    // Missing keys count as 0, with a warning.
    let output = mpwatch(&db).args(["index", "calc", "wci-v13", "R=100"]).output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing keys count as 0"));
    mpwatch(&db).args(["index", "calc", "wci-v13", "Q=1"]).assert().code(1);
}

#[test]
fn report_in_four_formats_and_charts_in_two() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    build(&db);
    assert!(run(&db, &["index", "--full"]).starts_with("recomputed"));

    let table = run(&db, &["report", "--period", "month", "--date", "2025-09-15", "--index", "wci-v14.2"]);
    assert!(table.contains("month 2025-09-01 ranking by wci-v14.2"), "{table}");
    assert!(table.contains("中科院之声"));
    let json: serde_json::Value =
        serde_json::from_str(&run(&db, &["report", "--period", "month", "--date", "2025-09-15", "--format", "json"]))
            .unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    // The largest account (index 2) has the most reads: rank 1.
    assert_eq!(rows[0]["account"], "中科院之声");
    assert_eq!(rows[0]["rank"], 1);
    assert_eq!(rows[0]["n"], 60);
    let csv = run(&db, &["report", "--period", "week", "--date", "2025-09-10", "--format", "csv", "--top", "2"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "period,rank,change,account,pushes,n,R,R/n,Rmax,Rt,Z,L,index,flags");
    assert!(lines[1].starts_with("2025-09-07,1,"), "{csv}");
    assert_eq!(lines.len(), 3);
    let md =
        run(&db, &["report", "--period", "day", "--date", "2025-10-20", "--format", "md", "--group", "publishers"]);
    assert!(md.starts_with("### day 2025-10-20 ranking by wci-v14.2"), "{md}");
    assert!(md.contains("| rank | change | account |"));
    let zh = run(&db, &["report", "--period", "month", "--date", "2025-09-15", "--lang", "zh"]);
    for header in ["排名", "公众号", "发布次数", "总阅读数", "头条阅读", "平均阅读", "最高阅读", "在看", "点赞"]
    {
        assert!(zh.contains(header), "{header} in {zh}");
    }
    // Counts are integers in JSON, and the default report names its period.
    let value = &json["rows"][0];
    assert!(value["reads"].is_i64() && value["reads_max"].is_i64() && value["pushes"].is_i64(), "{value}");
    let output = mpwatch(&db).args(["report", "--period", "week"]).output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("the last week whose data is final"));

    let custom: serde_json::Value =
        serde_json::from_str(&run(&db, &["report", "--from", "2025-09-03", "--to", "2025-09-12", "--format", "json"]))
            .unwrap();
    assert_eq!(custom["title"], "2025-09-03 to 2025-09-12 (10 days) ranking by wci-v14.2");
    assert_eq!(custom["rows"][0]["n"], 20, "two articles a day for ten days");

    let svg = dir.path().join("reads.svg");
    let png = dir.path().join("wci.png");
    run(
        &db,
        &[
            "chart",
            "--account",
            "环球科学",
            "--account",
            "科研圈",
            "--metric",
            "reads",
            "--from",
            "2025-09-01",
            "--to",
            "2025-10-25",
            "-o",
            svg.to_str().unwrap(),
        ],
    );
    run(
        &db,
        &[
            "chart",
            "--account",
            "环球科学",
            "--account",
            "中科院之声",
            "--metric",
            "wci-v14.2",
            "--period",
            "week",
            "--from",
            "2025-09-01",
            "--to",
            "2025-10-25",
            "-o",
            png.to_str().unwrap(),
        ],
    );
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        svg_text.starts_with("<svg") && svg_text.contains("环球科学") && svg_text.contains("2025-09"),
        "labels and dates"
    );
    let png_bytes = std::fs::read(&png).unwrap();
    assert_eq!(&png_bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png_bytes.len() > 10_000);
    mpwatch(&db)
        .args(["chart", "--account", "环球科学", "--from", "2025-09-01", "--to", "2025-09-02", "-o", "x.gif"])
        .assert()
        .code(1);
}

#[test]
fn report_ranks_within_the_selection_and_leaves_silent_accounts_unranked() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    build(&db);
    {
        use base64::Engine as _;
        let mut store = Store::open(&db, &StoreOptions::default()).unwrap();
        store
            .write(|tx| {
                // A tracked account that published nothing, and 科研圈 also in a second group.
                let biz = Biz::parse(&base64::engine::general_purpose::STANDARD.encode("3100000099")).unwrap();
                tx.add_account(
                    &NewAccount {
                        nickname: Some("学术志".into()),
                        groups: vec!["publishers".into()],
                        ..NewAccount::with_biz(biz)
                    },
                    START,
                )?;
                let second = Biz::parse(&base64::engine::general_purpose::STANDARD.encode("3100000001")).unwrap();
                tx.add_account(&NewAccount { groups: vec!["second".into()], ..NewAccount::with_biz(second) }, START)?;
                Ok(())
            })
            .unwrap();
    }
    let month = |extra: &[&str]| -> serde_json::Value {
        let args = [&["report", "--period", "month", "--date", "2025-09-15", "--format", "json"][..], extra].concat();
        serde_json::from_str(&run(&db, &args)).unwrap()
    };
    let all = month(&[]);
    let rows = all["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let ranks: Vec<&serde_json::Value> = rows.iter().map(|row| &row["rank"]).collect();
    assert_eq!(ranks, [&serde_json::json!(1), &serde_json::json!(2), &serde_json::json!(3), &serde_json::Value::Null]);
    assert_eq!(rows[3]["account"], "学术志", "the silent account comes last, unranked");
    assert_eq!(rows[3]["change"], serde_json::Value::Null);
    // v_rankings agrees: no rank for the silent account.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let unranked: i64 = conn
        .query_row(
            "SELECT count(*) FROM v_rankings WHERE account_name = '学术志' AND rank IS NULL AND n = 0",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(unranked > 0);

    // 科研圈 is second of all, first of its group.
    assert_eq!(rows[1]["account"], "科研圈");
    let second = month(&["--group", "second", "--top", "3"]);
    let rows = second["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["account"], "科研圈");
    assert_eq!(rows[0]["rank"], 1);
    let top = month(&["--group", "publishers", "--top", "1"]);
    assert_eq!(top["rows"].as_array().unwrap().len(), 1);
    assert_eq!(top["rows"][0]["rank"], 1);

    // A period without a single article is not a ranking, and nothing is stored for it.
    let output = mpwatch(&db).args(["report", "--period", "day", "--date", "2025-12-25"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no articles published in the day of 2025-12-25"));
    let output = mpwatch(&db).args(["report", "--from", "2025-12-20", "--to", "2025-12-25"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stored: i64 = conn
        .query_row("SELECT count(*) FROM index_periods WHERE first_day >= '2025-12-01'", [], |row| row.get(0))
        .unwrap();
    assert_eq!(stored, 0);
}
