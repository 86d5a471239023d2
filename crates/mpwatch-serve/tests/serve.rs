//! `mpwatch serve` over a database built through the store's API: feeds parsed back by
//! feed-rs (and the counts' elements by the rust-syndication parsers), filters,
//! conditional GET, escaping of what came from a page, the token, limits, and pages as
//! JSON with the numbers of the stored ranking.

use std::path::{Path, PathBuf};

use mpwatch_core::config::Config;
use mpwatch_core::secrets::Secret;
use mpwatch_core::{ArticleKey, ArticleKind, ArticleStatus, Biz, Copyright};
use mpwatch_index::compute::{PeriodKind, Rules};
use mpwatch_index::formulas::Formula;
use mpwatch_serve::{ServeError, ServeOptions, Server};
use mpwatch_store::accounts::NewAccount;
use mpwatch_store::articles::{ArticleRecord, Snapshot};
use mpwatch_store::{Store, StoreOptions};
use reqwest::StatusCode;
use tokio::sync::oneshot;

const DAY: i64 = 86_400;
const XSS: &str = "<script>alert(1)</script>";

fn biz(n: u64) -> Biz {
    use base64::Engine as _;
    // base64 of the decimal digits, as WeChat's __biz is.
    Biz::parse(&base64::engine::general_purpose::STANDARD.encode((3_000_000_000u64 + n).to_string())).unwrap()
}

/// Midnight (Beijing) eight days ago: every article is a week old or less, counted at
/// 1 h, 1 day and (where old enough) 7 days.
fn start() -> i64 {
    let now = mpwatch_core::time::now_unix();
    let beijing_midnight = now - (now + 8 * 3600) % DAY;
    beijing_midnight - 8 * DAY
}

/// Three accounts in two groups, eight days of articles; account 2's first article
/// has a title with a script in it, account 1's articles are originals.
fn build(path: &Path) -> Store {
    let start = start();
    let now = mpwatch_core::time::now_unix();
    let mut store = Store::open(path, &StoreOptions::default()).unwrap();
    store
        .write(|tx| {
            for account in 0..3u64 {
                let groups = if account < 2 { vec!["publishers".to_string()] } else { vec!["others".to_string()] };
                let new = NewAccount {
                    nickname: Some(format!("账号{account}")),
                    alias: Some(format!("alias{account}")),
                    groups,
                    ..NewAccount::with_biz(biz(account))
                };
                tx.add_account(&new, start - DAY)?;
                for day in 0..8i64 {
                    let published = start + day * DAY + 9 * 3600 + account as i64 * 600;
                    for idx in 1..=2u32 {
                        let key = ArticleKey { biz: biz(account), mid: 2_247_000_000 + day as u64, idx };
                        let title = if account == 2 && day == 0 && idx == 1 {
                            format!("{XSS} & \"quotes\"")
                        } else if account == 2 && day == 1 && idx == 1 {
                            // A control character, as pages carry now and then.
                            format!("{account}号 第{day}天 文章{idx}\u{8}")
                        } else {
                            format!("{account}号 第{day}天 文章{idx}")
                        };
                        // Account 0's bodies as the parser stores them, with an image.
                        let body_html = (account == 0).then(|| {
                            format!(r#"<p>正文 {day}-{idx}</p><p><img src="https://mmbiz.qpic.cn/x/{day}{idx}.png" alt=""></p>"#)
                        });
                        let record = ArticleRecord {
                            url: format!(
                                "https://mp.weixin.qq.com/s?__biz={}&mid={}&idx={idx}&sn=abc",
                                key.biz, key.mid
                            ),
                            key: Some(key),
                            title: Some(title),
                            digest: Some(format!("摘要 {account}-{day}-{idx}")),
                            author: Some("作者".into()),
                            content_text: Some(format!("第一段 {XSS}\n第二段：科学 {account}")),
                            published_at: Some(published),
                            kind: Some(if idx == 2 && day % 2 == 0 {
                                ArticleKind::Picture
                            } else {
                                ArticleKind::Article
                            }),
                            copyright: Some(if account == 1 { Copyright::Original } else { Copyright::None }),
                            status: ArticleStatus::Ok,
                            body_html,
                            ..ArticleRecord::default()
                        };
                        let (id, _) = tx.upsert_article(&record, published)?;
                        let reads = 1000 * (account as i64 + 1) * (day + 1) / i64::from(idx);
                        for (age, fraction) in [(3600, 3), (DAY + 600, 8), (7 * DAY + 600, 10)] {
                            let observed = published + age;
                            if observed > now {
                                continue;
                            }
                            let reads = reads * fraction / 10;
                            tx.insert_snapshot(
                                id,
                                &Snapshot {
                                    observed_at: observed,
                                    rung_seconds: Some(age),
                                    reads: Some(reads),
                                    reads_capped: false,
                                    likes: Some(reads / 40),
                                    wows: Some(reads / 90),
                                    shares: Some(reads / 25),
                                    comments: Some(reads / 300),
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
    store.index_all_for_search().unwrap();
    let rules = Rules { now, ..Rules::shanghai() };
    mpwatch_index::update(&mut store, &rules, mpwatch_index::Scope::Incremental, now).unwrap();
    store
}

struct Running {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
    db: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn serve_with(token: Option<&str>, requests_per_minute: u32) -> Running {
    // reqwest is built without a default TLS provider (the crawler picks ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("serve.db");
    drop(build(&db));
    let mut config = Config::default();
    config.serve.requests_per_minute = requests_per_minute;
    let options = ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        db_path: db.clone(),
        config,
        token: token.map(Secret::new),
    };
    let server = Server::bind(options).await.unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Running { base, stop: Some(stop), _dir: dir, db }
}

async fn serve() -> Running {
    serve_with(None, 100_000).await
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.unwrap()
}

async fn text(url: &str) -> String {
    let response = get(url).await;
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    response.text().await.unwrap()
}

fn titles(feed: &feed_rs::model::Feed) -> Vec<String> {
    feed.entries.iter().map(|e| e.title.as_ref().map(|t| t.content.clone()).unwrap_or_default()).collect()
}

async fn parsed(url: &str) -> feed_rs::model::Feed {
    let body = text(url).await;
    feed_rs::parser::parse(body.as_bytes()).unwrap_or_else(|e| panic!("{url}: {e}\n{body:.500}"))
}

#[tokio::test]
async fn feeds_parse_back_with_their_items_newest_first_in_three_formats() {
    let server = serve().await;
    let base = &server.base;
    let atom = parsed(&format!("{base}/feeds/all.atom?limit=5")).await;
    let rss = parsed(&format!("{base}/feeds/all.rss?limit=5")).await;
    let json = parsed(&format!("{base}/feeds/all.json?limit=5")).await;
    assert_eq!(atom.entries.len(), 5);
    assert_eq!(titles(&atom), titles(&rss));
    assert_eq!(titles(&atom), titles(&json));
    // Newest first: the last day's articles of account 2 (published last that day).
    assert_eq!(titles(&atom)[0], "2号 第7天 文章1");
    let published: Vec<_> = atom.entries.iter().map(|e| e.published.unwrap()).collect();
    assert!(published.windows(2).all(|w| w[0] >= w[1]), "{published:?}");
    // Full text, author, URL.
    let entry = &atom.entries[0];
    let body = entry.content.as_ref().and_then(|c| c.body.clone()).unwrap();
    assert!(body.contains("第二段：科学 2"), "{body}");
    assert!(body.contains("阅读 "), "the counts line: {body}");
    assert_eq!(entry.authors[0].name, "作者");
    assert!(entry.links[0].href.starts_with("https://mp.weixin.qq.com/s?__biz="));
    // One account, one group.
    let account = parsed(&format!("{base}/feeds/account/alias1.atom")).await;
    assert!(titles(&account).iter().all(|t| t.starts_with("1号")), "{:?}", titles(&account));
    assert_eq!(account.entries.len(), 16);
    let group = parsed(&format!("{base}/feeds/group/publishers.rss?limit=100")).await;
    assert_eq!(group.entries.len(), 32);
    assert!(titles(&group).iter().all(|t| t.starts_with("0号") || t.starts_with("1号")));
    assert_eq!(get(&format!("{base}/feeds/account/nobody.atom")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(get(&format!("{base}/feeds/all.xhtml")).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_latest_counts_are_namespaced_elements_and_json_feed_extensions() {
    let server = serve().await;
    let base = &server.base;
    let store = Store::open_read_only(&server.db, std::time::Duration::from_secs(5)).unwrap();
    // The newest article of account 0, and its latest snapshot from the database.
    let (url, reads, likes, wows): (String, i64, i64, i64) = store
        .connection()
        .query_row(
            "SELECT a.url, s.reads, s.likes, s.wows FROM articles a JOIN metric_snapshots s ON s.article_id = a.id
             WHERE a.account_id = 1 ORDER BY a.published_at DESC, a.idx, s.observed_at DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    let atom: atom_syndication::Feed = text(&format!("{base}/feeds/account/1.atom?limit=1")).await.parse().unwrap();
    let entry = &atom.entries()[0];
    assert_eq!(entry.id(), url);
    let counts = &entry.extensions()["mpwatch"]["counts"][0];
    assert_eq!(counts.attrs()["reads"], reads.to_string());
    assert_eq!(counts.attrs()["likes"], likes.to_string());
    assert_eq!(counts.attrs()["wows"], wows.to_string());
    assert_eq!(atom.namespaces()["mpwatch"], mpwatch_serve::feed::NAMESPACE);
    let channel: rss::Channel = text(&format!("{base}/feeds/account/1.rss?limit=1")).await.parse().unwrap();
    let counts = &channel.items()[0].extensions()["mpwatch"]["counts"][0];
    assert_eq!(counts.attrs()["reads"], reads.to_string());
    let json: serde_json::Value =
        serde_json::from_str(&text(&format!("{base}/feeds/account/1.json?limit=1")).await).unwrap();
    let item = &json["items"][0];
    assert_eq!(json["version"], "https://jsonfeed.org/version/1.1");
    assert_eq!(item["_mpwatch"]["counts"]["reads"], reads);
    assert_eq!(item["_mpwatch"]["counts"]["wows"], wows);
    assert_eq!(item["_mpwatch"]["account"], "账号0");
}

#[tokio::test]
async fn filters_select_the_items() {
    let server = serve().await;
    let base = &server.base;
    let all = |query: &str| {
        let url = format!("{base}/feeds/all.json?limit=1000&{query}");
        async move { titles(&parsed(&url).await) }
    };
    assert_eq!(all("").await.len(), 48);
    assert_eq!(all("limit=3").await.len(), 3);
    let included = all("title_include=%E6%96%87%E7%AB%A01%7Cquotes").await; // 文章1|quotes
    assert_eq!(included.len(), 24, "{included:#?}");
    assert!(included.iter().all(|t| t.contains("文章1") || t.contains("quotes")));
    let excluded = all("title_exclude=%E6%96%87%E7%AB%A01").await;
    assert!(excluded.iter().all(|t| !t.contains("文章1")), "{excluded:?}");
    assert_eq!(excluded.len(), 25, "the script title has no 文章1");
    let original = all("original_only=true").await;
    assert_eq!(original.len(), 16);
    assert!(original.iter().all(|t| t.starts_with("1号")));
    let pictures = all("kind=picture").await;
    assert_eq!(pictures.len(), 12, "idx 2 on even days, three accounts: {pictures:?}");
    // min_reads against the latest snapshot of each article.
    let store = Store::open_read_only(&server.db, std::time::Duration::from_secs(5)).unwrap();
    let expected: i64 = store
        .connection()
        .query_row(
            "SELECT count(*) FROM articles a WHERE (SELECT l.reads FROM metric_snapshots l WHERE l.article_id = a.id
             ORDER BY l.observed_at DESC LIMIT 1) >= 5000",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(expected > 0);
    assert_eq!(all("min_reads=5000").await.len() as i64, expected);
    // since: a date in the configured zone (Beijing); the first two days are left out.
    let since = jiff::Timestamp::from_second(start() + 2 * DAY)
        .unwrap()
        .to_zoned_datetime(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap())
        .date();
    assert_eq!(all(&format!("since={since}")).await.len(), 36);
    for bad in ["limit=0", "limit=x", "kind=poem", "since=yesterday", "min_reads=many", "original_only=perhaps"] {
        let response = get(&format!("{base}/feeds/all.atom?{bad}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn conditional_get_answers_304_until_the_feed_changes() {
    let server = serve().await;
    let url = format!("{}/feeds/account/1.atom", server.base);
    let client = reqwest::Client::new();
    let first = client.get(&url).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let modified = first.headers()["last-modified"].to_str().unwrap().to_string();
    let again = client.get(&url).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.unwrap().is_empty());
    let since = client.get(&url).header("If-Modified-Since", &modified).send().await.unwrap();
    assert_eq!(since.status(), StatusCode::NOT_MODIFIED);
    // A new snapshot of the account's newest article changes the feed.
    let mut store = Store::open(&server.db, &StoreOptions::default()).unwrap();
    let now = mpwatch_core::time::now_unix();
    store
        .write(|tx| {
            let id: i64 = tx
                .connection()
                .query_row("SELECT id FROM articles WHERE account_id = 1 ORDER BY published_at DESC LIMIT 1", [], |r| {
                    r.get(0)
                })
                .unwrap();
            tx.insert_snapshot(
                id,
                &Snapshot {
                    observed_at: now + 5,
                    rung_seconds: None,
                    reads: Some(999_999),
                    reads_capped: false,
                    likes: Some(1),
                    wows: Some(2),
                    shares: Some(3),
                    comments: Some(4),
                    source: "test".into(),
                },
            )?;
            Ok(())
        })
        .unwrap();
    let changed = client.get(&url).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
    assert!(changed.text().await.unwrap().contains("reads=\"999999\""));
}

#[tokio::test]
async fn what_came_from_a_page_is_escaped_everywhere() {
    let server = serve().await;
    let base = &server.base;
    let store = Store::open_read_only(&server.db, std::time::Duration::from_secs(5)).unwrap();
    let id: i64 =
        store.connection().query_row("SELECT id FROM articles WHERE title LIKE '<script>%'", [], |r| r.get(0)).unwrap();
    for path in [
        format!("/article/{id}"),
        "/account/3".to_string(),
        "/search?q=quotes".to_string(),
        "/search?q=%3Cscript%3E".to_string(),
        "/feeds/account/3.atom?limit=100".to_string(),
        "/feeds/account/3.rss?limit=100".to_string(),
    ] {
        let body = text(&format!("{base}{path}")).await;
        assert!(!body.contains(XSS), "{path} has the raw script tag");
        assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{path} shows it as text");
    }
    // In Atom's escaped HTML content, the text is escaped twice: it stays text.
    let atom = parsed(&format!("{base}/feeds/account/3.atom?limit=100")).await;
    let entry = atom.entries.iter().find(|e| e.title.as_ref().unwrap().content.starts_with("<script>")).unwrap();
    let html = entry.content.as_ref().unwrap().body.clone().unwrap();
    assert!(html.contains("第一段 &lt;script&gt;"), "{html}");
    // JSON Feed: a JSON string (the reader escapes when it renders); its HTML is escaped.
    let json = text(&format!("{base}/feeds/account/3.json?limit=100")).await;
    assert!(!json.contains("<p>第一段 <script>"), "content_html escapes the body");
    // Every answer carries the policy.
    let response = get(&format!("{base}/article/{id}")).await;
    let csp = response.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"), "{csp}");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn the_token_is_required_everywhere_when_set() {
    let token = "s3cret-Token_1-0123456789abcdefghijklmnop";
    let server = serve_with(Some(token), 100_000).await;
    let base = &server.base;
    let client = reqwest::Client::new();
    for path in ["/rankings", "/feeds/all.atom", "/feeds.opml", "/status.json", "/assets/style.css"] {
        let url = format!("{base}{path}");
        assert_eq!(client.get(&url).send().await.unwrap().status(), StatusCode::UNAUTHORIZED, "{path}");
        let wrong = client.get(&url).bearer_auth("s3cret-Token_2-0123456789abcdefghijklmnop").send().await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{path}");
        let right = client.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(right.status(), StatusCode::OK, "{path}");
        let header = client.get(&url).header("X-Mpwatch-Token", token).send().await.unwrap();
        assert_eq!(header.status(), StatusCode::OK, "{path}");
    }
    let query = client.get(format!("{base}/rankings?token={token}")).send().await.unwrap();
    assert_eq!(query.status(), StatusCode::OK);
    let cookie = query.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let pair = cookie.split(';').next().unwrap();
    assert!(!cookie.contains(token), "the cookie holds a digest, not the token");
    let lowercase =
        client.get(format!("{base}/status")).header("Authorization", format!("bearer {token}")).send().await.unwrap();
    assert_eq!(lowercase.status(), StatusCode::OK, "the scheme is case-insensitive");
    let with_cookie = client.get(format!("{base}/status")).header("Cookie", pair).send().await.unwrap();
    assert_eq!(with_cookie.status(), StatusCode::OK);
    // No page shows it.
    let page = client.get(format!("{base}/status")).bearer_auth(token).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains(token));
    // Beyond loopback without a token: refused at start.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    drop(build(&db));
    let options = ServeOptions {
        listen: "0.0.0.0:0".parse().unwrap(),
        db_path: db.clone(),
        config: Config::default(),
        token: None,
    };
    assert!(matches!(Server::bind(options).await, Err(ServeError::TokenRequired { .. })));
    // Behind a proxy: loopback, but reached from elsewhere.
    let mut proxied = Config::default();
    proxied.serve.base_url = Some("https://mpwatch.example.org".parse().unwrap());
    let options =
        ServeOptions { listen: "127.0.0.1:0".parse().unwrap(), db_path: db.clone(), config: proxied, token: None };
    assert!(matches!(Server::bind(options).await, Err(ServeError::TokenRequired { .. })));
    // An empty, short or URL-unsafe token is refused.
    for weak in ["", "short", "spaces are not url safe but long enough to pass"] {
        let options = ServeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            db_path: db.clone(),
            config: Config::default(),
            token: Some(Secret::new(weak)),
        };
        assert!(matches!(Server::bind(options).await, Err(ServeError::WeakToken { .. })), "{weak:?}");
    }
}

#[tokio::test]
async fn no_write_endpoint_no_body_and_a_rate_limit_per_client() {
    let server = serve_with(None, 20).await;
    let base = &server.base;
    let client = reqwest::Client::new();
    let post = client.post(format!("{base}/rankings")).send().await.unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body = client.get(format!("{base}/rankings")).body("x".repeat(100)).send().await.unwrap();
    assert_eq!(body.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let long = client.get(format!("{base}/search?q={}", "a".repeat(3000))).send().await.unwrap();
    assert_eq!(long.status(), StatusCode::URI_TOO_LONG);
    // 20 a minute, bursts of 10: some of the next 20 requests are refused.
    let mut refused = 0;
    for _ in 0..20 {
        let response = client.get(format!("{base}/assets/style.css")).send().await.unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
            refused += 1;
        }
    }
    assert!(refused >= 5, "{refused} refused");
}

#[tokio::test]
async fn pages_as_json_show_the_stored_ranking_and_never_write() {
    let server = serve().await;
    let base = &server.base;
    let before = std::fs::read(&server.db).unwrap();
    let store = Store::open_read_only(&server.db, std::time::Duration::from_secs(5)).unwrap();
    let start = start() + 2 * DAY;
    let day = jiff::Timestamp::from_second(start)
        .unwrap()
        .to_zoned_datetime(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap())
        .date();
    let expected = mpwatch_index::ranking(&store, PeriodKind::Day, start, Formula::Nri, None).unwrap();
    let page: serde_json::Value =
        serde_json::from_str(&text(&format!("{base}/rankings.json?period=day&date={day}&index=nri")).await).unwrap();
    assert_eq!(page["values"], "stored");
    let rows = page["rows"].as_array().unwrap();
    assert_eq!(rows.len(), expected.len());
    for (row, want) in rows.iter().zip(&expected) {
        assert_eq!(row["account_id"], want.account_id);
        assert_eq!(row["rank"], serde_json::json!(want.rank));
        assert_eq!(row["value"].as_f64().unwrap(), want.value);
        assert_eq!(row["reads"], want.reads);
    }
    // Accept: application/json gives the same; a group ranks within itself.
    let client = reqwest::Client::new();
    let accept: serde_json::Value = client
        .get(format!("{base}/rankings?period=day&date={day}&index=nri&group=publishers"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ranks: Vec<i64> = accept["rows"].as_array().unwrap().iter().map(|r| r["rank"].as_i64().unwrap()).collect();
    assert_eq!(ranks, [1, 2]);
    // A custom range is computed now (the server stores nothing).
    let custom: serde_json::Value = serde_json::from_str(
        &text(&format!("{base}/rankings.json?period=custom&from={day}&to={}", day.tomorrow().unwrap())).await,
    )
    .unwrap();
    assert_eq!(custom["values"], "computed");
    assert_eq!(custom["rows"].as_array().unwrap().len(), 3);
    // Every page has its JSON form.
    for path in [
        "/accounts.json",
        "/account/alias0.json",
        "/article/1.json",
        "/search.json?q=%E7%A7%91%E5%AD%A6",
        "/status.json",
    ] {
        let value: serde_json::Value = serde_json::from_str(&text(&format!("{base}{path}")).await).unwrap();
        assert!(value.is_object() || value.is_array(), "{path}");
    }
    let status: serde_json::Value = serde_json::from_str(&text(&format!("{base}/status.json")).await).unwrap();
    assert_eq!(status["database"]["schema_version"], mpwatch_store::LATEST_SCHEMA_VERSION);
    let search: serde_json::Value =
        serde_json::from_str(&text(&format!("{base}/search.json?q=%E7%AC%AC%E4%BA%8C%E6%AE%B5")).await).unwrap();
    assert_eq!(search["hits"].as_array().unwrap().len(), 48, "第二段: every text");
    let opml = text(&format!("{base}/feeds.opml")).await;
    let document = opml::OPML::from_str(&opml).unwrap();
    let urls: Vec<String> = document
        .body
        .outlines
        .iter()
        .flat_map(|o| std::iter::once(o).chain(o.outlines.iter()))
        .filter_map(|o| o.xml_url.clone())
        .collect();
    assert_eq!(urls.len(), 1 + 2 + 3, "all, two groups, three accounts: {urls:?}");
    for url in &urls {
        assert_eq!(get(url).await.status(), StatusCode::OK, "{url}");
    }
    // Nothing was written.
    assert_eq!(std::fs::read(&server.db).unwrap(), before);
}

#[tokio::test]
async fn bodies_images_control_characters_and_filtered_self_links() {
    let server = serve().await;
    let base = &server.base;
    // Account 0's stored bodies, with their images, in the feed and on the page.
    let atom = parsed(&format!("{base}/feeds/account/1.atom?limit=1")).await;
    let html = atom.entries[0].content.as_ref().unwrap().body.clone().unwrap();
    assert!(html.contains(r#"<img src="https://mmbiz.qpic.cn/x/"#), "{html}");
    assert!(html.contains("正文 7-1"), "{html}");
    let store = Store::open_read_only(&server.db, std::time::Duration::from_secs(5)).unwrap();
    let id: i64 = store
        .connection()
        .query_row("SELECT article_id FROM article_bodies ORDER BY article_id LIMIT 1", [], |r| r.get(0))
        .unwrap();
    let page = text(&format!("{base}/article/{id}")).await;
    assert!(page.contains(r#"<img src="https://mmbiz.qpic.cn/x/"#), "the page shows the body's image");
    // A title with a control character: the feeds are still XML (feed-rs and the
    // rust-syndication parsers read them), the title without it.
    for extension in ["atom", "rss"] {
        let feed = parsed(&format!("{base}/feeds/account/3.{extension}?limit=100")).await;
        assert!(titles(&feed).contains(&"2号 第1天 文章1".to_string()), "{extension}");
    }
    let _: atom_syndication::Feed = text(&format!("{base}/feeds/account/3.atom?limit=100")).await.parse().unwrap();
    // A filtered feed's id and self link keep its filters (and never a token).
    let filtered = text(&format!("{base}/feeds/all.atom?min_reads=5000&kind=article&token=x")).await;
    let feed: atom_syndication::Feed = filtered.parse().unwrap();
    let self_link = feed.links().iter().find(|l| l.rel() == "self").unwrap().href().to_string();
    assert!(self_link.ends_with("/feeds/all.atom?min_reads=5000&kind=article"), "{self_link}");
    assert_eq!(feed.id(), self_link);
}

#[tokio::test]
async fn search_needs_every_word_and_account_pages_reach_every_article() {
    let server = serve().await;
    let base = &server.base;
    let hits = |query: &str| {
        let url = format!("{base}/search.json?q={query}");
        async move {
            let page: serde_json::Value = serde_json::from_str(&text(&url).await).unwrap();
            page["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["title"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    // 第二段 (in every text; a trigram word) and 2号 (in account 2's titles; too short
    // for the index, checked with LIKE): both must occur.
    let both = hits("%E7%AC%AC%E4%BA%8C%E6%AE%B5%202%E5%8F%B7").await;
    assert_eq!(both.len(), 15, "{both:?}");
    assert!(both.iter().all(|t| t.starts_with("2号")), "{both:?}");
    // Short words only: titles and digests, every word.
    let short = hits("2%E5%8F%B7%20%E7%AC%AC7%E5%A4%A9").await; // "2号 第7天"
    assert_eq!(short, ["2号 第7天 文章1", "2号 第7天 文章2"]);
    // Snippets in JSON carry no highlight marks.
    let page = text(&format!("{base}/search.json?q=%E7%AC%AC%E4%BA%8C%E6%AE%B5")).await;
    assert!(!page.contains("\\u0001"), "{page:.300}");
    // An article stored since the last batch of the index is found all the same (by
    // LIKE among those waiting), and once the batch has run, once.
    let mut store = Store::open(&server.db, &StoreOptions::default()).unwrap();
    store
        .write(|tx| {
            let key = ArticleKey { biz: biz(1), mid: 2_247_999_999, idx: 1 };
            let record = ArticleRecord {
                url: format!("https://mp.weixin.qq.com/s?__biz={}&mid={}&idx=1&sn=new", key.biz, key.mid),
                key: Some(key),
                title: Some("新到的文章".into()),
                content_text: Some("第二段：引力波探测器".into()),
                published_at: Some(start() + 9 * DAY),
                status: ArticleStatus::Ok,
                ..ArticleRecord::default()
            };
            tx.upsert_article(&record, start() + 9 * DAY)
        })
        .unwrap();
    let waiting = |base: String| async move {
        let status: serde_json::Value = serde_json::from_str(&text(&format!("{base}/status.json")).await).unwrap();
        status["database"]["waiting_for_search_index"].as_i64().unwrap()
    };
    assert_eq!(waiting(base.clone()).await, 1);
    let query = "%E5%BC%95%E5%8A%9B%E6%B3%A2%E6%8E%A2%E6%B5%8B"; // 引力波探测
    assert_eq!(hits(query).await, ["新到的文章"]);
    let second = "%E7%AC%AC%E4%BA%8C%E6%AE%B5"; // 第二段: in every text
    assert_eq!(hits(second).await.len(), 49, "48 indexed, 1 waiting");
    store.index_all_for_search().unwrap();
    assert_eq!(waiting(base.clone()).await, 0);
    assert_eq!(hits(query).await, ["新到的文章"]);
    assert_eq!(hits(second).await.len(), 49);
    // Three to a page: following "Older articles" reaches all 16 of an account, each
    // once, though pages end inside pushes of two.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..20 {
        let url = match &after {
            Some(after) => format!("{base}/account/1.json?limit=3&after={after}"),
            None => format!("{base}/account/1.json?limit=3"),
        };
        let page: serde_json::Value = serde_json::from_str(&text(&url).await).unwrap();
        let rows = page["articles"].as_array().unwrap();
        seen.extend(rows.iter().map(|r| r["id"].as_i64().unwrap()));
        let Some(last) = rows.last() else { break };
        after = Some(format!("{}:{}", last["published_at"], last["idx"]));
        if rows.len() < 3 {
            break;
        }
    }
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(seen.len(), 16);
    assert_eq!(unique.len(), 16);
}
