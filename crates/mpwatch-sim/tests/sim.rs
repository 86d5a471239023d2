//! The simulator over real HTTP on loopback: determinism, parser round trip, counts,
//! credentials, quotas, faults, feeds, the request log.

use std::collections::HashMap;
use std::time::Duration;

use mpwatch_core::time::{ClockMode, ControlledClock};
use mpwatch_core::{ArticleKind, ArticleStatus, Copyright};
use mpwatch_sim::scenario::{Endpoint, Fault, FaultRule, Limit, Quota, VerificationStyle};
use mpwatch_sim::{Scenario, SimConfig, SimHandle, TruthArticle};
use mpwatch_wechat::page::{PageKind, parse_page};

/// 2025-11-10 12:00 UTC, a fixed instant so that answers are reproducible.
const T0: f64 = 1_762_776_000.0;

async fn sim(config: SimConfig) -> SimHandle {
    tls();
    mpwatch_sim::start(config).await.expect("start simulator")
}

fn small(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        synthetic_accounts: 6,
        days: 12,
        page_bytes: 60_000,
        legacy_share: 0.4,
        clock: ControlledClock::new(ClockMode::Fixed { at: T0 }),
        ..SimConfig::default()
    }
}

/// reqwest is built without a default TLS provider (see mpwatch-crawl's fetch module).
fn tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn client() -> reqwest::Client {
    tls();
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

async fn truth(sim: &SimHandle) -> Vec<TruthArticle> {
    mpwatch_sim::server::truth_at(&sim.state().world, sim.state().now())
}

fn path_of(url: &str) -> &str {
    url.trim_start_matches("https://mp.weixin.qq.com")
}

#[tokio::test]
async fn same_seed_and_time_give_byte_identical_answers() {
    let (a, b) = (sim(small(7)).await, sim(small(7)).await);
    let (cred_a, cred_b) = (a.state().issue_credential(None), b.state().issue_credential(None));
    assert_eq!(cred_a.key, cred_b.key);
    let articles = truth(&a).await;
    assert!(articles.len() > 20, "{}", articles.len());
    let http = client();
    let biz = &articles[0].key.biz;
    let paths = [
        path_of(&articles[0].url).to_string(),
        path_of(&articles[3].short_url).to_string(),
        format!("/mp/profile_ext?action=getmsg&__biz={biz}&f=json&offset=0&count=10&key={}", cred_a.key),
    ];
    for path in paths {
        let body_a = http.get(format!("{}{path}", a.base_url())).send().await.unwrap().bytes().await.unwrap();
        let body_b = http.get(format!("{}{path}", b.base_url())).send().await.unwrap().bytes().await.unwrap();
        assert_eq!(body_a, body_b, "{path}");
    }
    let other = sim(small(8)).await;
    assert_ne!(truth(&other).await[0].title, articles[0].title);
}

#[tokio::test]
async fn every_page_the_sim_serves_is_parsed_correctly() {
    let mut config = small(11);
    config.synthetic_accounts = 12;
    config.days = 40;
    let sim = sim(config).await;
    let http = client();
    let articles = truth(&sim).await;
    let mut kinds_seen = std::collections::BTreeSet::new();
    let legacy = sim.state().world.accounts().iter().filter(|a| a.legacy_layout).count();
    assert!(legacy > 0);
    for article in &articles {
        for url in [&article.url, &article.short_url] {
            let body =
                http.get(format!("{}{}", sim.base_url(), path_of(url))).send().await.unwrap().bytes().await.unwrap();
            let page = parse_page(&body);
            let expected = match (article.status, article.kind, article.copyright) {
                (ArticleStatus::Deleted, _, _) => PageKind::Deleted,
                (ArticleStatus::Blocked, _, _) => PageKind::Blocked,
                (_, ArticleKind::Picture, _) => PageKind::Picture,
                (_, ArticleKind::Text, _) => PageKind::Text,
                (_, ArticleKind::Video, _) => PageKind::Video,
                (_, ArticleKind::Audio, _) => PageKind::Audio,
                (_, _, Copyright::Repost) => PageKind::Repost,
                _ => PageKind::Article,
            };
            let account = &sim.state().world.accounts()[article.account_index];
            // Legacy pages have no item_show_type: a legacy video reads as an article.
            let expected = if account.legacy_layout
                && matches!(expected, PageKind::Video | PageKind::Audio | PageKind::Picture | PageKind::Text)
            {
                PageKind::Article
            } else if account.legacy_layout && expected == PageKind::Repost {
                PageKind::Repost
            } else {
                expected
            };
            assert_eq!(page.kind, expected, "{} ({:?})", article.url, article.kind);
            kinds_seen.insert(page.kind.as_str());
            if !page.kind.is_article() {
                if page.kind == PageKind::Blocked {
                    assert!(page.reason.is_some());
                }
                continue;
            }
            assert_eq!(page.key().as_ref(), Some(&article.key), "{url}");
            assert_eq!(page.sn.as_deref(), Some(article.sn.as_str()));
            assert_eq!(page.title.as_deref(), Some(article.title.as_str()));
            assert_eq!(page.account_name.as_deref(), Some(article.account.as_str()));
            assert_eq!(page.account_username.as_deref(), Some(account.username.as_str()));
            assert_eq!(page.published_at, Some(article.published_at));
            assert_eq!(page.copyright, Some(article.copyright), "{url}");
            assert_eq!(page.canonical_url().as_deref(), Some(article.url.as_str()));
            if !account.legacy_layout {
                assert_eq!(page.author.as_deref(), Some(article.author.as_str()));
                assert_eq!(page.account_alias, account.alias);
                assert_eq!(page.short_url.as_deref(), Some(article.short_url.as_str()));
            }
            assert!(page.text_chars > 0, "{url}: no body text");
        }
    }
    for kind in ["article", "picture", "text", "repost", "deleted", "blocked"] {
        assert!(kinds_seen.contains(kind), "no {kind} page in {kinds_seen:?}");
    }
    // Pages the world produces only on demand.
    assert_eq!(parse_page(mpwatch_sim::render::unavailable_page().as_bytes()).kind, PageKind::Unavailable);
    assert_eq!(parse_page(mpwatch_sim::render::verification_page("x").as_bytes()).kind, PageKind::Verification);
    assert_eq!(parse_page(mpwatch_sim::render::parameter_error_page().as_bytes()).kind, PageKind::Unknown);
    let wrong_sn = articles[0].url.replace(&articles[0].sn, "0000");
    let body =
        http.get(format!("{}{}", sim.base_url(), path_of(&wrong_sn))).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(parse_page(&body).kind, PageKind::Unknown);
}

#[tokio::test]
async fn real_size_pages_are_about_the_requested_size() {
    let mut config = small(3);
    config.page_bytes = 3_000_000;
    config.legacy_share = 0.0;
    let sim = sim(config).await;
    let article = truth(&sim)
        .await
        .into_iter()
        .find(|a| a.status == ArticleStatus::Ok && a.kind == ArticleKind::Article)
        .unwrap();
    let body = client()
        .get(format!("{}{}", sim.base_url(), path_of(&article.url)))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!((2_900_000..3_100_000).contains(&body.len()), "{}", body.len());
    let page = parse_page(&body);
    assert_eq!(page.title.as_deref(), Some(article.title.as_str()));
}

async fn counts(http: &reqwest::Client, sim: &SimHandle, key: &str, article: &TruthArticle) -> serde_json::Value {
    let form = [
        ("__biz", article.key.biz.to_string()),
        ("mid", article.key.mid.to_string()),
        ("idx", article.key.idx.to_string()),
        ("sn", article.sn.clone()),
        ("appmsg_type", "9".into()),
        ("is_only_read", "1".into()),
    ];
    http.post(format!("{}/mp/getappmsgext?x5=0&key={key}", sim.base_url()))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn counts_grow_with_time_and_cap_at_ten_thousand_plus() {
    let mut config = small(5);
    config.synthetic_accounts = 40;
    config.scenario.credential_ttl = 365 * 86_400;
    let sim = sim(config).await;
    let http = client();
    let credential = sim.state().issue_credential(None);
    let articles: Vec<TruthArticle> =
        truth(&sim).await.into_iter().filter(|a| a.status == ArticleStatus::Ok).take(12).collect();
    let mut previous: HashMap<String, i64> = HashMap::new();
    for _ in 0..6 {
        for article in &articles {
            let answer = counts(&http, &sim, &credential.key, article).await;
            let reads = answer["appmsgstat"]["read_num"].as_i64().unwrap();
            let before = previous.insert(article.url.clone(), reads).unwrap_or(0);
            assert!(reads >= before, "reads went down: {before} -> {reads}");
            assert!(reads <= 100_001);
        }
        sim.clock().advance(6.0 * 3600.0);
    }
    // The truth knows articles past 10万+, shown as 100001.
    let capped: Vec<_> = truth(&sim).await.into_iter().filter(|a| a.counts.reads_capped).collect();
    assert!(!capped.is_empty());
    assert!(capped.iter().all(|a| a.counts.reads == 100_001));
    let answer = counts(&http, &sim, &credential.key, &capped[0]).await;
    assert_eq!(answer["appmsgstat"]["read_num"], 100_001);
}

#[tokio::test]
async fn credentials_expire_after_thirty_simulated_minutes() {
    let sim = sim(small(9)).await;
    let http = client();
    let credential = sim.state().issue_credential(Some("phone-1".into()));
    let article = truth(&sim).await.into_iter().find(|a| a.status == ArticleStatus::Ok).unwrap();
    assert_eq!(counts(&http, &sim, &credential.key, &article).await["base_resp"]["ret"], 0);
    sim.clock().advance(29.0 * 60.0);
    assert_eq!(counts(&http, &sim, &credential.key, &article).await["base_resp"]["ret"], 0);
    sim.clock().advance(61.0);
    let expired = counts(&http, &sim, &credential.key, &article).await;
    assert_eq!(expired["ret"], -3);
    assert_eq!(expired["errmsg"], "no session");
    let list = http
        .get(format!(
            "{}/mp/profile_ext?action=getmsg&__biz={}&f=json&key={}",
            sim.base_url(),
            article.key.biz,
            credential.key
        ))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(list["ret"], -3);
    // Revocation works the same way.
    let fresh = sim.state().issue_credential(None);
    assert!(sim.state().revoke_credential(fresh.id));
    assert_eq!(counts(&http, &sim, &fresh.key, &article).await["ret"], -3);
}

#[tokio::test]
async fn quotas_trigger_and_cool_down() {
    let mut config = small(13);
    config.scenario.quota =
        Quota { per_client: Some(Limit { limit: 5, window: 60 }), per_credential: None, cooldown: 600 };
    config.scenario.credential_ttl = 86_400;
    let sim = sim(config).await;
    let http = client();
    let article = truth(&sim).await.into_iter().find(|a| a.status == ArticleStatus::Ok).unwrap();
    let page_url = format!("{}{}", sim.base_url(), path_of(&article.url));
    for _ in 0..5 {
        let body = http.get(&page_url).send().await.unwrap().bytes().await.unwrap();
        assert!(parse_page(&body).kind.is_article());
    }
    let blocked = http.get(&page_url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(parse_page(&blocked).kind, PageKind::Verification);
    let credential = sim.state().issue_credential(None);
    let api = counts(&http, &sim, &credential.key, &article).await;
    assert_eq!(api["ret"], -6, "APIs answer frequency control while blocked");
    sim.clock().advance(599.0);
    assert_eq!(
        parse_page(&http.get(&page_url).send().await.unwrap().bytes().await.unwrap()).kind,
        PageKind::Verification
    );
    sim.clock().advance(2.0);
    assert!(parse_page(&http.get(&page_url).send().await.unwrap().bytes().await.unwrap()).kind.is_article());

    // The redirect style sends the client to the captcha page.
    let mut scenario = sim.state().scenario();
    scenario.verification = VerificationStyle::Redirect;
    scenario.quota.per_client = Some(Limit { limit: 0, window: 60 });
    sim.state().set_scenario(scenario);
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = no_redirects.get(&page_url).send().await.unwrap();
    assert_eq!(response.status(), 302);
    assert!(response.headers()["location"].to_str().unwrap().starts_with("/mp/wappoc_appmsgcaptcha"));
}

fn with_fault(config: &mut SimConfig, endpoint: Endpoint, fault: Fault) {
    config.scenario.faults = vec![FaultRule { endpoint, fault, probability: None, next: Some(1) }];
}

async fn first_page(sim: &SimHandle) -> String {
    let article = truth(sim).await.into_iter().find(|a| a.status == ArticleStatus::Ok).unwrap();
    format!("{}{}", sim.base_url(), path_of(&article.url))
}

#[tokio::test]
async fn status_faults_then_recovery() {
    for (status, retry_after) in [(503u16, Some(7u64)), (429, Some(30)), (500, None), (502, None)] {
        let mut config = small(17);
        with_fault(&mut config, Endpoint::Article, Fault::Status { status, retry_after });
        let sim = sim(config).await;
        let url = first_page(&sim).await;
        let response = client().get(&url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(
            response.headers().get("retry-after").map(|v| v.to_str().unwrap().parse::<u64>().unwrap()),
            retry_after
        );
        // `next = 1`: the second request is served normally.
        assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
    }
}

#[tokio::test]
async fn connection_faults() {
    // Reset: the client sees a failed body, never a page.
    let mut config = small(19);
    with_fault(&mut config, Endpoint::Article, Fault::Reset);
    let sim_reset = sim(config).await;
    let result = match client().get(first_page(&sim_reset).await).send().await {
        Ok(response) => response.bytes().await.map(|_| ()),
        Err(error) => Err(error),
    };
    assert!(result.is_err());

    // Stall: accepted, never answered; the client's timeout fires.
    let mut config = small(19);
    with_fault(&mut config, Endpoint::Article, Fault::Stall);
    let sim_stall = sim(config).await;
    let quick = reqwest::Client::builder().timeout(Duration::from_millis(500)).build().unwrap();
    let error = match quick.get(first_page(&sim_stall).await).send().await {
        Ok(response) => response.bytes().await.unwrap_err(),
        Err(error) => error,
    };
    assert!(error.is_timeout(), "{error}");

    // Trickle: a few bytes per second; a read timeout fires long before the end.
    let mut config = small(19);
    with_fault(&mut config, Endpoint::Article, Fault::Trickle { bytes_per_second: 16 });
    let sim_trickle = sim(config).await;
    let error = match quick.get(first_page(&sim_trickle).await).send().await {
        Ok(response) => response.bytes().await.unwrap_err(),
        Err(error) => error,
    };
    assert!(error.is_timeout(), "{error}");

    // Truncate: announced length, half the body, then the connection closes.
    let mut config = small(19);
    with_fault(&mut config, Endpoint::Article, Fault::Truncate);
    let sim_truncate = sim(config).await;
    let response = client().get(first_page(&sim_truncate).await).send().await.unwrap();
    let announced = response.content_length().unwrap();
    assert!(announced > 1000);
    assert!(response.bytes().await.is_err());
}

#[tokio::test]
async fn content_faults() {
    let mut config = small(23);
    with_fault(&mut config, Endpoint::Article, Fault::Oversize { bytes: 20_000_000 });
    let sim_big = sim(config).await;
    let body = client().get(first_page(&sim_big).await).send().await.unwrap().bytes().await.unwrap();
    assert!(body.len() >= 20_000_000);

    let mut config = small(23);
    with_fault(&mut config, Endpoint::Article, Fault::Garbage);
    let sim_garbage = sim(config).await;
    let body = client().get(first_page(&sim_garbage).await).send().await.unwrap().bytes().await.unwrap();
    assert!(std::str::from_utf8(&body).is_err());
    assert_eq!(parse_page(&body).kind, PageKind::Unknown);

    let mut config = small(23);
    with_fault(&mut config, Endpoint::Article, Fault::RedirectLoop);
    let sim_loop = sim(config).await;
    let error = client().get(first_page(&sim_loop).await).send().await.unwrap_err();
    assert!(error.is_redirect(), "{error}");

    let mut config = small(23);
    with_fault(&mut config, Endpoint::Article, Fault::Gzip);
    let sim_gzip = sim(config).await;
    let url = first_page(&sim_gzip).await;
    let raw = reqwest::Client::builder().no_gzip().build().unwrap().get(&url).send().await.unwrap();
    assert_eq!(raw.headers()["content-encoding"], "gzip");
    let mut config = small(23);
    with_fault(&mut config, Endpoint::Article, Fault::Gzip);
    let sim_gzip = sim(config).await;
    let decoded = client().get(first_page(&sim_gzip).await).send().await.unwrap().bytes().await.unwrap();
    assert!(parse_page(&decoded).kind.is_article());
}

#[tokio::test]
async fn probability_faults_hit_about_their_share_deterministically() {
    let mut config = small(29);
    config.scenario.faults = vec![FaultRule {
        endpoint: Endpoint::Any,
        fault: Fault::Status { status: 503, retry_after: None },
        probability: Some(0.3),
        next: None,
    }];
    let sim = sim(config).await;
    let url = first_page(&sim).await;
    let http = client();
    let mut failures = 0;
    for _ in 0..200 {
        if http.get(&url).send().await.unwrap().status() == 503 {
            failures += 1;
        }
    }
    assert!((35..=85).contains(&failures), "{failures} of 200");
}

#[tokio::test]
async fn profile_ext_pages_through_every_push_and_backend_lists_are_throttled() {
    let mut config = small(31);
    config.scenario.credential_ttl = 86_400;
    let sim = sim(config).await;
    let http = client();
    let credential = sim.state().issue_credential(None);
    let account = &sim.state().world.accounts()[0];
    let expected = sim.state().world.articles_of(account, sim.state().now());
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let body = http
            .get(format!(
                "{}/mp/profile_ext?action=getmsg&__biz={}&f=json&offset={offset}&count=10&key={}",
                sim.base_url(),
                account.biz,
                credential.key
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let page = mpwatch_wechat::api::parse_profile_ext(&body).unwrap();
        assert!(page.outcome.is_ok());
        seen.extend(page.articles.iter().map(|a| a.key.clone().unwrap()));
        if !page.can_msg_continue {
            break;
        }
        offset = page.next_offset.unwrap() as usize;
    }
    assert_eq!(seen, expected.iter().map(|a| a.key.clone()).collect::<Vec<_>>());

    let backend = http
        .get(format!(
            "{}/cgi-bin/appmsg?action=list_ex&type=9&fakeid={}&begin=0&count=5&token=1",
            sim.base_url(),
            account.biz
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let parsed = mpwatch_wechat::api::parse_appmsg_list(&backend).unwrap();
    assert_eq!(parsed.outcome, mpwatch_wechat::api::ApiOutcome::FrequencyControl { code: 200013 });
    let mut scenario = sim.state().scenario();
    scenario.backend_lists = mpwatch_sim::scenario::BackendLists::Ok;
    sim.state().set_scenario(scenario);
    let publish = http
        .get(format!(
            "{}/cgi-bin/appmsgpublish?sub=list&fakeid={}&begin=0&count=5&token=1",
            sim.base_url(),
            account.biz
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let parsed = mpwatch_wechat::api::parse_appmsg_publish(&publish).unwrap();
    assert_eq!(parsed.articles.len(), 5.min(expected.len()));
}

#[tokio::test]
async fn feeds_in_three_formats_parse() {
    let sim = sim(small(37)).await;
    let http = client();
    let account = &sim.state().world.accounts()[1];
    let expected = sim.state().world.articles_of(account, sim.state().now());
    for format in ["atom", "rss", "json"] {
        let body = http.get(sim.feed_url(account, format)).send().await.unwrap().bytes().await.unwrap();
        let feed = mpwatch_wechat::feed::parse_feed(&body).unwrap();
        assert_eq!(feed.title.as_deref(), Some(account.nickname.as_str()), "{format}");
        assert_eq!(feed.entries.len(), expected.len().min(20), "{format}");
        assert!(feed.entries.iter().all(|e| e.article.is_some()), "{format}");
        assert_eq!(feed.entries[0].published_at, Some(expected[0].published_at), "{format}");
    }
    let robots = http.get(format!("{}/robots.txt", sim.feed_base_url())).send().await.unwrap().text().await.unwrap();
    assert!(robots.contains("Disallow: /private/"));
}

#[tokio::test]
async fn admin_api_and_request_log() {
    let sim = sim(small(41)).await;
    let http = client();
    let issued: serde_json::Value =
        http.post(format!("{}/__sim/credentials", sim.base_url())).send().await.unwrap().json().await.unwrap();
    let key = issued["key"].as_str().unwrap().to_string();
    let article = truth(&sim).await.into_iter().find(|a| a.status == ArticleStatus::Ok).unwrap();
    counts(&http, &sim, &key, &article).await;
    let log: serde_json::Value =
        http.get(format!("{}/__sim/requests", sim.base_url())).send().await.unwrap().json().await.unwrap();
    let requests = log["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1, "admin calls are not logged");
    assert_eq!(requests[0]["path"], "/mp/getappmsgext");
    assert_eq!(requests[0]["credential"], issued["id"]);
    assert_eq!(requests[0]["status"], 200);
    assert_eq!(requests[0]["client"], "127.0.0.1");

    let clock: serde_json::Value = http
        .put(format!("{}/__sim/clock", sim.base_url()))
        .json(&serde_json::json!({"mode": "fixed", "at": T0 + 86_400.0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(clock["now"], T0 as i64 + 86_400);
    let truth: serde_json::Value = http
        .get(format!("{}/__sim/truth?at={}", sim.base_url(), T0 as i64))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = &truth["articles"][0];
    assert!(first["counts"]["reads"].is_i64() && first["key"]["mid"].is_u64() && first["status"].is_string());
    let scenario: Scenario =
        http.get(format!("{}/__sim/scenario", sim.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(scenario, Scenario::default());
}
