//! The crawler against the simulator: the database ends equal to the truth.

mod common;

use common::{Harness, T0, count};
use mpwatch_core::{ArticleStatus, SourceKind};
use mpwatch_crawl::CrawlOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_ends_with_the_database_equal_to_the_truth() {
    let harness = Harness::new(101, 4, 10, |_| {}).await;
    harness.add_accounts(usize::MAX, &[SourceKind::ProfileExt]);
    let engine = harness.engine(vec![harness.credential("phone-1")]);
    let summary = engine.run(&CrawlOptions::default()).await.unwrap();
    assert_eq!(summary.result, "ok", "{summary:?}");

    let truth = harness.truth();
    let store = harness.store();
    assert!(truth.len() > 50, "{}", truth.len());
    assert_eq!(count(&store, "SELECT count(*) FROM articles"), truth.len() as i64);
    for expected in &truth {
        let article =
            store.article_by_key(&expected.key).unwrap().unwrap_or_else(|| panic!("missing {}", expected.url));
        assert_eq!(article.status, expected.status, "{}", expected.url);
        assert_eq!(article.sn.as_deref(), Some(expected.sn.as_str()));
        assert_eq!(article.url, expected.url);
        if expected.status != ArticleStatus::Ok {
            continue;
        }
        let account = &harness.sim.state().world.accounts()[expected.account_index];
        assert_eq!(article.title.as_deref(), Some(expected.title.as_str()));
        assert_eq!(article.published_at, Some(expected.published_at));
        assert_eq!(article.copyright, Some(expected.copyright));
        assert_eq!(article.short_url.is_some(), !account.legacy_layout);
        // Legacy pages do not say their kind; the list does, and the page does not
        // downgrade it.
        assert_eq!(article.kind, expected.kind, "{} (legacy: {})", expected.url, account.legacy_layout);
        if !account.legacy_layout {
            assert_eq!(article.author.as_deref(), Some(expected.author.as_str()));
        }
        assert!(article.content_text.is_some_and(|t| !t.is_empty()), "{}", expected.url);
        assert!(article.account_id.is_some());
        // Counts: one snapshot per article, taken at the (fixed) observation instant.
        let snapshots = store.snapshots_of(article.id).unwrap();
        assert_eq!(snapshots.len(), 1, "{}", expected.url);
        let snapshot = &snapshots[0].snapshot;
        assert_eq!(snapshot.observed_at, T0 as i64);
        assert_eq!(snapshot.reads, Some(expected.counts.reads));
        assert_eq!(snapshot.reads_capped, expected.counts.reads_capped);
        assert_eq!(snapshot.likes, Some(expected.counts.likes));
        assert_eq!(snapshot.wows, Some(expected.counts.wows));
        assert_eq!(snapshot.shares, Some(expected.counts.shares));
        assert_eq!(snapshot.comments, Some(expected.counts.comments));
        assert_eq!(snapshots[0].age_seconds, Some(T0 as i64 - expected.published_at));
    }
    // The run ended with every article in the full-text index, with its page's text.
    assert_eq!(store.waiting_for_search_index().unwrap(), 0);
    store
        .connection()
        .execute("INSERT INTO articles_fts (articles_fts, rank) VALUES ('integrity-check', 1)", [])
        .unwrap();
    let sample = truth.iter().find(|a| a.status == ArticleStatus::Ok).unwrap();
    let indexed: Vec<i64> = store
        .connection()
        .prepare("SELECT rowid FROM articles_fts WHERE articles_fts MATCH ?1")
        .unwrap()
        .query_map([format!("\"{}\"", sample.title.replace('"', "\"\""))], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(indexed.contains(&store.article_by_key(&sample.key).unwrap().unwrap().id), "{}", sample.title);
    // Accounts learned their names from the pages.
    let accounts = store.list_accounts(None).unwrap();
    assert_eq!(accounts[0].nickname.as_deref(), Some("环球科学"));
    assert!(accounts.iter().all(|a| a.sources.iter().all(|s| s.health == mpwatch_core::SourceHealth::Ok)));

    // A second run changes nothing and fetches no page again.
    let before = count(&store, "SELECT count(*) FROM fetch_log WHERE url_class = 'article_page'");
    let again = harness.engine(vec![harness.credential("phone-2")]).run(&CrawlOptions::default()).await.unwrap();
    assert_eq!(again.counts.articles_new, 0);
    assert_eq!(again.counts.snapshots, 0);
    assert_eq!(count(&store, "SELECT count(*) FROM fetch_log WHERE url_class = 'article_page'"), before);
    assert_eq!(count(&store, "SELECT count(*) FROM articles"), truth.len() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_with_short_links_and_manual_urls_resolve_to_keys() {
    let harness = Harness::new(103, 2, 6, |config| config.legacy_share = 0.0).await;
    harness.add_accounts(3, &[SourceKind::Feed]);
    // A short link of an account nobody tracks, given by hand.
    let manual = harness.truth().into_iter().find(|a| a.account_index == 4 && a.status == ArticleStatus::Ok).unwrap();
    let engine = harness.engine(vec![harness.credential("phone-1")]);
    let options = CrawlOptions { urls: vec![manual.short_url.clone()], ..CrawlOptions::default() };
    let summary = engine.run(&options).await.unwrap();
    assert!(summary.counts.articles_new > 0, "{summary:?}");
    let store = harness.store();
    let world = &harness.sim.state().world;
    // wewe-rss feeds list each account's latest 20 by short link; each resolves to its key.
    let mut checked = 0;
    for account in world.accounts().iter().take(3) {
        let live = world
            .articles_of(account, T0 as i64)
            .into_iter()
            .take(20)
            .filter(|a| a.status_at(T0 as i64) == ArticleStatus::Ok);
        for expected in live {
            let article =
                store.article_by_key(&expected.key).unwrap().unwrap_or_else(|| panic!("{} missing", expected.key));
            assert_eq!(article.short_url, Some(format!("https://mp.weixin.qq.com/s/{}", world.short_token(&expected))));
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked}");
    let by_hand = store.article_by_key(&manual.key).unwrap().expect("the manual short link was fetched");
    assert_eq!(by_hand.title.as_deref(), Some(manual.title.as_str()));
    let robots = count(&store, "SELECT count(*) FROM fetch_log WHERE url_class = 'robots'");
    assert_eq!(robots, 1, "robots.txt is fetched once for the feed host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archived_pages_can_be_reparsed_without_fetching() {
    let mut harness = Harness::new(105, 1, 3, |_| {}).await;
    harness.config.crawl.archive_raw_pages = true;
    harness.add_accounts(2, &[SourceKind::ProfileExt]);
    harness
        .engine(vec![harness.credential("phone-1")])
        .run(&CrawlOptions { metrics: false, ..CrawlOptions::default() })
        .await
        .unwrap();
    let mut store = harness.store();
    let archived = count(&store, "SELECT count(*) FROM raw_pages");
    assert_eq!(archived, count(&store, "SELECT count(*) FROM articles WHERE status = 'ok'"));
    // Damage what the parser derived, then re-derive it from the archive.
    store.connection().execute("UPDATE articles SET title = NULL, content_text = NULL", []).unwrap();
    let requests = harness.sim.state().requests_since(0).len();
    let summary = mpwatch_crawl::reparse::reparse(&mut store, T0 as i64).unwrap();
    assert_eq!(summary.pages as i64, archived);
    assert_eq!(summary.updated as i64, archived);
    assert_eq!(
        count(&store, "SELECT count(*) FROM articles WHERE status = 'ok' AND (title IS NULL OR content_text IS NULL)"),
        0
    );
    assert_eq!(harness.sim.state().requests_since(0).len(), requests, "nothing fetched");
    // The damage took the words out of the full-text index; the reparse put them back.
    assert_eq!(summary.indexed_for_search as i64, count(&store, "SELECT count(*) FROM articles"));
    assert_eq!(store.waiting_for_search_index().unwrap(), 0);
    store
        .connection()
        .execute("INSERT INTO articles_fts (articles_fts, rank) VALUES ('integrity-check', 1)", [])
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_charset_header_does_not_garble_what_is_stored() {
    use mpwatch_sim::scenario::{Endpoint, Fault, FaultRule};
    let harness = Harness::new(103, 2, 4, |sim| {
        for endpoint in [Endpoint::Article, Endpoint::ProfileExt, Endpoint::Getappmsgext] {
            sim.scenario.faults.push(FaultRule {
                endpoint,
                fault: Fault::WrongCharset { charset: "gbk".into() },
                probability: Some(1.0),
                next: None,
            });
        }
    })
    .await;
    harness.add_accounts(usize::MAX, &[SourceKind::ProfileExt]);
    let engine = harness.engine(vec![harness.credential("phone-1")]);
    engine.run(&CrawlOptions::default()).await.unwrap();
    let store = harness.store();
    let mut checked = 0;
    for expected in harness.truth().iter().filter(|a| a.status == ArticleStatus::Ok) {
        let article =
            store.article_by_key(&expected.key).unwrap().unwrap_or_else(|| panic!("missing {}", expected.url));
        assert_eq!(article.title.as_deref(), Some(expected.title.as_str()), "{}", expected.url);
        assert!(article.content_text.as_deref().is_some_and(|t| !t.contains('\u{fffd}')));
        checked += 1;
    }
    assert!(checked > 20, "{checked}");
    let accounts = store.list_accounts(None).unwrap();
    assert_eq!(accounts[0].nickname.as_deref(), Some("环球科学"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_page_fetched_meanwhile_through_its_short_link_is_not_fetched_again() {
    let harness = Harness::new(108, 1, 3, |config| config.legacy_share = 0.0).await;
    let article = harness.truth().into_iter().find(|a| a.status == ArticleStatus::Ok).expect("a live article");
    let pages_only = CrawlOptions { metrics: false, ..CrawlOptions::default() };
    // A feed's short link is fetched (the article stored by its key) after the list API
    // queued its page by key, before that item came up.
    let engine = harness.engine(vec![]);
    engine.run(&CrawlOptions { urls: vec![article.short_url.clone()], ..pages_only.clone() }).await.unwrap();
    let mut store = harness.store();
    let now = harness.sim.state().now();
    store.write(|tx| tx.enqueue("page", &article.url, 10, now, now)).unwrap();
    let before = harness.sim.state().requests_since(0).len();
    engine.run(&pages_only).await.unwrap();
    assert_eq!(harness.sim.state().requests_since(0).len(), before, "the listed page was not fetched again");
    assert_eq!(count(&store, "SELECT count(*) FROM work_queue WHERE kind = 'page' AND state != 'done'"), 0);
    // A re-check of a stored page (or an ad-hoc --url) is fetched all the same: the
    // finished item is queued again with the re-check's priority.
    store.write(|tx| tx.enqueue("page", &article.url, 0, now, now)).unwrap();
    engine.run(&pages_only).await.unwrap();
    assert_eq!(harness.sim.state().requests_since(0).len(), before + 1, "the re-check fetched the page");
    // A listed item still waiting when a re-check is due (it joins the waiting item) is
    // fetched: the stored page is older than a re-check's age.
    store.write(|tx| tx.enqueue("page", &article.url, 10, now, now)).unwrap();
    harness.clock.advance(90_000.0);
    engine.run(&pages_only).await.unwrap();
    let page_requests = harness.sim.state().requests_since(0).iter().filter(|r| r.path == "/s").count();
    assert_eq!(page_requests, 2, "a page a day old was fetched again");
    // An ad-hoc `--url` of the short link is fetched though the page is fresh: someone
    // asked for it.
    let short_link_requests =
        || harness.sim.state().requests_since(0).iter().filter(|r| r.path.starts_with("/s/")).count();
    assert_eq!(short_link_requests(), 1);
    engine.run(&CrawlOptions { urls: vec![article.short_url.clone()], ..pages_only.clone() }).await.unwrap();
    assert_eq!(short_link_requests(), 2, "the ad-hoc short link was not fetched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_article_listed_by_key_is_not_fetched_again_through_its_feed_short_link() {
    // Every account through both profile_ext (keys) and its feed (short links to the
    // latest 20): one page fetch per article, but for short links leased while their
    // article's page was still in flight.
    let harness = Harness::new(104, 2, 6, |config| config.legacy_share = 0.0).await;
    harness.add_accounts(usize::MAX, &[SourceKind::ProfileExt, SourceKind::Feed]);
    let engine = harness.engine(vec![harness.credential("phone-1")]);
    engine.run(&CrawlOptions::default()).await.unwrap();
    let store = harness.store();
    let articles = count(&store, "SELECT count(*) FROM articles");
    assert_eq!(articles, harness.truth().len() as i64);
    let fetches = count(&store, "SELECT count(*) FROM fetch_log WHERE url_class = 'article_page'");
    let in_flight = 2 * i64::from(harness.config.crawl.concurrency_per_host);
    assert!(fetches <= articles + in_flight, "{fetches} page fetches for {articles} articles");
    let short_links_fetched = count(
        &store,
        "SELECT count(*) FROM fetch_log WHERE url_class = 'article_page' AND target LIKE 'https://mp.weixin.qq.com/s/%'",
    );
    assert!(short_links_fetched <= in_flight, "{short_links_fetched} short links fetched");
    eprintln!("{fetches} page fetches for {articles} articles, {short_links_fetched} of them short links");
}
