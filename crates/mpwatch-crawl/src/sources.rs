//! Sources: the ways of finding an account's articles. Each implements [`Source`];
//! the engine asks the one a `discover` work item names, records its health, and skips
//! a failing one until its retry time, so a dead source never stops the others.
//!
//! | kind | asks | needs |
//! |---|---|---|
//! | [`Feed`] | an RSS / Atom / JSON Feed URL (robots.txt honoured off WeChat's host) | nothing |
//! | [`ProfileExt`] | `mp/profile_ext?action=getmsg`, paging back to what an earlier sweep covered; the position is kept in the store | client credentials |
//! | [`MpBackend`] | `cgi-bin/appmsgpublish` | a backend session (answers 200013 since mid-2026) |
//! | [`Manual`] | the article URL the user gave | nothing |

use std::collections::HashMap;
use std::sync::Arc;

use mpwatch_core::Biz;
use mpwatch_core::secrets::BackendSession;
use mpwatch_core::time::UnixSeconds;
use mpwatch_store::accounts::{ListPosition, Source as SourceRow};
use mpwatch_wechat::api::{self, ApiOutcome, ListedArticle};
use mpwatch_wechat::url::{ArticleUrl, canonical_url};

use crate::alerts::{Alerts, expire_credential};
use crate::cooldown::{Cooldowns, Scope};
use crate::credential_leases::CredentialLeases;
use crate::credentials::CredentialPool;
use crate::db::Db;
use crate::error::CrawlError;
use crate::http::{Http, SendFailure, host_of};
use crate::rate_limit::RequestClass;
use crate::run::RunScope;

/// What a source found.
#[derive(Debug)]
pub(crate) enum Found {
    /// An article with what its list says.
    Listed(Box<ListedArticle>),
    /// Only a URL (short link, feed item without a key).
    Url(String),
}

/// Why a source gave nothing.
#[derive(Debug)]
pub(crate) enum SourceFailure {
    /// It could not be asked now (no credential, cooldown); not its fault.
    Wait(UnixSeconds, String),
    /// It failed; its health drops and it is tried again then.
    Broken(UnixSeconds, String),
}

impl From<SendFailure> for SourceFailure {
    /// A source whose host is unreachable is failing (its health says so, and it is
    /// asked again when the host's breaker lets requests through).
    fn from(failure: SendFailure) -> SourceFailure {
        SourceFailure::Broken(failure.retry_at, failure.message)
    }
}

/// What sources may use: fetching, cooldowns, credentials, the store (to see which
/// articles are known) and the robots.txt cache. Nothing of the engine's run loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourceContext<'a> {
    /// The run that asks (its counters and fetch log).
    pub(crate) run: &'a RunScope,
    /// Polite, logged requests.
    pub(crate) http: &'a Http,
    /// Anti-crawl cooldowns.
    pub(crate) cooldowns: &'a Cooldowns,
    /// Client credential sets.
    pub(crate) credentials: &'a CredentialPool,
    /// Which of them this node may use now.
    pub(crate) credential_leases: &'a CredentialLeases,
    /// The backend session, if the secrets file has one.
    pub(crate) backend: Option<&'a BackendSession>,
    /// Parsed robots.txt per origin.
    pub(crate) robots: &'a RobotsCache,
    /// The store.
    pub(crate) db: &'a Db,
    /// Where alerts go.
    pub(crate) alerts: &'a Alerts,
}

/// robots.txt per origin (`None`: none, or unreadable, so everything is allowed).
pub(crate) type RobotsCache = tokio::sync::Mutex<HashMap<String, Option<Arc<texting_robots::Robot>>>>;

/// What asking a source gave: the articles it listed (stored even when it then
/// failed), where its paging stands, and whether it reached the end it was asked for.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Articles found.
    pub(crate) found: Vec<Found>,
    /// The paging position to save with them (`None`: the source does not page).
    pub(crate) position: Option<ListPosition>,
    /// Why it stopped early, if it did.
    pub(crate) failure: Option<SourceFailure>,
    /// It stopped after its page budget with more to list (ask again at once).
    pub(crate) more: bool,
}

impl Listing {
    /// Everything the source has: these articles.
    fn complete(found: Vec<Found>) -> Listing {
        Listing { found, ..Listing::default() }
    }

    /// Nothing, because of `failure`.
    fn failed(failure: SourceFailure) -> Listing {
        Listing { failure: Some(failure), ..Listing::default() }
    }
}

/// What asking a source gives (the error stops the crawl; a source's own failure is
/// in the [`Listing`]).
pub(crate) type Discovery = Result<Listing, CrawlError>;

/// A way of finding an account's articles.
pub(crate) trait Source {
    /// Asks the source once for the account's articles.
    async fn discover(
        &self,
        cx: &SourceContext<'_>,
        source: &SourceRow,
        biz: Option<&Biz>,
        backfill: bool,
    ) -> Discovery;
}

/// RSS / Atom / JSON Feed of a feed tool.
pub(crate) struct Feed;
/// `mp/profile_ext` with client credentials.
pub(crate) struct ProfileExt;
/// The official-account backend.
pub(crate) struct MpBackend;
/// An article URL given by the user.
pub(crate) struct Manual;

impl Source for Feed {
    async fn discover(&self, cx: &SourceContext<'_>, source: &SourceRow, _: Option<&Biz>, _: bool) -> Discovery {
        discover_feed(cx, source).await
    }
}

impl Source for ProfileExt {
    async fn discover(
        &self,
        cx: &SourceContext<'_>,
        source: &SourceRow,
        biz: Option<&Biz>,
        backfill: bool,
    ) -> Discovery {
        discover_profile_ext(cx, source, biz, backfill).await
    }
}

impl Source for MpBackend {
    async fn discover(&self, cx: &SourceContext<'_>, source: &SourceRow, biz: Option<&Biz>, _: bool) -> Discovery {
        discover_backend(cx, source, biz).await
    }
}

impl Source for Manual {
    async fn discover(&self, _: &SourceContext<'_>, source: &SourceRow, _: Option<&Biz>, _: bool) -> Discovery {
        Ok(Listing::complete(vec![Found::Url(source.locator.clone())]))
    }
}

async fn discover_feed(cx: &SourceContext<'_>, source: &SourceRow) -> Discovery {
    let feed_url = source.locator.clone();
    let host = host_of(&feed_url);
    if host != cx.http.wechat_host() && !robots_allow(cx, &feed_url).await {
        return Ok(Listing::failed(SourceFailure::Broken(cx.http.now() + 86_400, "disallowed by robots.txt".into())));
    }
    let fetched = match cx
        .http
        .send(cx.run, "feed", &feed_url, &host, (RequestClass::Feed, &host), || cx.http.anonymous.get(&feed_url))
        .await
    {
        Ok(fetched) if fetched.status < 400 => fetched,
        Ok(fetched) => {
            return Ok(Listing::failed(SourceFailure::Broken(
                cx.http.now() + 3600,
                format!("HTTP {}", fetched.status),
            )));
        }
        Err(failure) => return Ok(Listing::failed(failure.into())),
    };
    cx.http.log_answer(cx.run, "feed", &feed_url, &fetched, "ok").await;
    match mpwatch_wechat::feed::parse_feed(&fetched.body) {
        Ok(feed) => Ok(Listing::complete(
            feed.entries
                .into_iter()
                .map(|entry| match entry.article {
                    Some(ArticleUrl::Permanent { key, sn }) => Found::Listed(Box::new(ListedArticle {
                        url: canonical_url(&key, sn.as_deref()),
                        key: Some(key),
                        sn,
                        title: entry.title,
                        digest: None,
                        cover_url: None,
                        author: None,
                        source_url: None,
                        published_at: entry.published_at,
                        copyright: None,
                        item_show_type: None,
                        deleted: false,
                    })),
                    _ => Found::Url(entry.url),
                })
                .collect(),
        )),
        Err(error) => Ok(Listing::failed(SourceFailure::Broken(cx.http.now() + 3600, error.to_string()))),
    }
}

async fn robots_allow(cx: &SourceContext<'_>, url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else { return false };
    let origin = parsed.origin().ascii_serialization();
    let mut cache = cx.robots.lock().await;
    if !cache.contains_key(&origin) {
        let robots_url = format!("{origin}/robots.txt");
        let host = host_of(&robots_url);
        let fetched = cx
            .http
            .send(cx.run, "robots", &robots_url, &host, (RequestClass::Feed, &host), || {
                cx.http.anonymous.get(&robots_url)
            })
            .await;
        let robot = match fetched {
            Ok(fetched) => {
                cx.http
                    .log_answer(
                        cx.run,
                        "robots",
                        &robots_url,
                        &fetched,
                        if fetched.status < 400 { "ok" } else { "http_error" },
                    )
                    .await;
                // No robots.txt (404) allows everything.
                (fetched.status < 400)
                    .then(|| {
                        texting_robots::Robot::new(&cx.http.config.http.user_agent, &fetched.body).ok().map(Arc::new)
                    })
                    .flatten()
            }
            Err(_) => None,
        };
        cache.insert(origin.clone(), robot);
    }
    cache.get(&origin).and_then(|r| r.as_ref()).is_none_or(|robot| robot.allowed(url))
}

/// List pages one `discover` item asks for before it saves its position and goes back
/// to the queue: a crash or a kill loses at most this many list requests, never articles.
const PAGES_PER_ITEM: usize = 10;
/// `count` of a `profile_ext` request, and the overlap a resumed sweep re-reads: an
/// article deleted since shifts older ones towards the front by up to a page.
const LIST_PAGE: i64 = 10;

/// Pages back through `profile_ext` from the newest push until the sweep reaches what an
/// earlier sweep covered (or the end of the list; with `backfill`, always the end).
/// The position is kept in the store, so a sweep that fails or runs out of credentials
/// part-way resumes there on the next attempt and across restarts.
async fn discover_profile_ext(
    cx: &SourceContext<'_>,
    source: &SourceRow,
    biz: Option<&Biz>,
    backfill: bool,
) -> Discovery {
    let Some(biz) = biz.cloned().or_else(|| Biz::parse(&source.locator).ok()) else {
        return Ok(Listing::failed(SourceFailure::Broken(
            cx.http.now() + 86_400,
            "profile_ext needs the account's biz".into(),
        )));
    };
    let before = source.listing;
    let stop_at = if backfill { None } else { before.covered_through };
    let mut offset = before.resume_offset.map_or(0, |resume| (resume - LIST_PAGE).max(0));
    let mut newest = before.resume_offset.and(before.sweep_newest);
    let mut listing = Listing::default();
    let unfinished = |offset, newest| ListPosition { resume_offset: Some(offset), sweep_newest: newest, ..before };
    let host = cx.http.wechat_host();
    let mut pages = 0;
    while pages < PAGES_PER_ITEM {
        let now = cx.http.now();
        let Some(credential) = cx.credentials.acquire(now) else {
            listing.position = Some(unfinished(offset, newest));
            listing.failure = Some(SourceFailure::Wait(now + 60, "pending credentials".into()));
            return Ok(listing);
        };
        if let Some(until) = cx.cooldowns.cooling_until(Scope::Credential, &credential.name).await? {
            cx.credentials.cool(&credential.name, until);
            continue;
        }
        if let Some(until) = cx.credential_leases.busy_until(&credential.name).await? {
            cx.credentials.cool(&credential.name, until);
            continue;
        }
        let client = cx.http.client_for(&credential);
        let url = cx.http.wechat_url(&format!(
            "/mp/profile_ext?action=getmsg&__biz={biz}&f=json&offset={offset}&count={LIST_PAGE}&is_ok=1&scene=124&uin={}&key={}&pass_ticket={}&appmsg_token={}",
            credential.uin.expose(),
            credential.key.expose(),
            credential.pass_ticket.expose(),
            credential.appmsg_token.expose()
        ));
        let broken = |at, error| Some(SourceFailure::Broken(at, error));
        let fetched = match cx
            .http
            .send(cx.run, "list_api", biz.as_str(), &host, (RequestClass::ListApi, &host), || client.get(&url))
            .await
        {
            Ok(fetched) => fetched,
            Err(failure) => {
                listing.position = Some(unfinished(offset, newest));
                listing.failure =
                    broken(failure.retry_at, format!("list page at offset {offset}: {}", failure.message));
                return Ok(listing);
            }
        };
        let page = match api::parse_profile_ext(&String::from_utf8_lossy(&fetched.body)) {
            Ok(page) => page,
            Err(error) => {
                cx.http.log_answer(cx.run, "list_api", biz.as_str(), &fetched, "unparsable").await;
                listing.position = Some(unfinished(offset, newest));
                listing.failure = broken(cx.http.now() + 600, format!("list page at offset {offset}: {error}"));
                return Ok(listing);
            }
        };
        match page.outcome {
            ApiOutcome::Ok => {}
            ApiOutcome::SessionExpired { .. } => {
                cx.http.log_answer(cx.run, "list_api", biz.as_str(), &fetched, "expired_credential").await;
                expire_credential(cx.credentials, cx.db, cx.alerts, &credential.name, cx.http.now()).await?;
                continue;
            }
            ApiOutcome::FrequencyControl { code } => {
                cx.http.log_answer(cx.run, "list_api", biz.as_str(), &fetched, "throttled").await;
                let until = cx
                    .cooldowns
                    .enter(
                        &cx.run.progress,
                        Scope::Credential,
                        &credential.name,
                        &format!("frequency control ({code})"),
                    )
                    .await?;
                cx.credentials.cool(&credential.name, until);
                continue;
            }
            other => {
                cx.http.log_answer(cx.run, "list_api", biz.as_str(), &fetched, "refused").await;
                listing.position = Some(unfinished(offset, newest));
                listing.failure = broken(cx.http.now() + 3600, format!("list page at offset {offset}: {other:?}"));
                return Ok(listing);
            }
        }
        cx.http.log_answer(cx.run, "list_api", biz.as_str(), &fetched, "ok").await;
        pages += 1;
        let times = page.articles.iter().filter_map(|a| a.published_at);
        let oldest_on_page = times.clone().min();
        newest = newest.max(times.max());
        listing.found.extend(page.articles.into_iter().map(|a| Found::Listed(Box::new(a))));
        let reached_covered = stop_at.is_some_and(|covered| oldest_on_page.is_some_and(|oldest| oldest <= covered));
        let next = page.next_offset.unwrap_or(offset + LIST_PAGE);
        if reached_covered || !page.can_msg_continue || next <= offset {
            listing.position = Some(ListPosition {
                covered_through: newest.max(before.covered_through),
                resume_offset: None,
                sweep_newest: None,
            });
            return Ok(listing);
        }
        offset = next;
    }
    listing.position = Some(unfinished(offset, newest));
    listing.more = true;
    Ok(listing)
}

async fn discover_backend(cx: &SourceContext<'_>, source: &SourceRow, biz: Option<&Biz>) -> Discovery {
    let now = cx.http.now();
    let Some(session) = cx.backend else {
        return Ok(Listing::failed(SourceFailure::Broken(
            now + 86_400,
            "no backend session in the secrets file".into(),
        )));
    };
    let Some(fakeid) = biz.cloned().or_else(|| Biz::parse(&source.locator).ok()) else {
        return Ok(Listing::failed(SourceFailure::Broken(now + 86_400, "mp_backend needs the account's biz".into())));
    };
    let host = cx.http.wechat_host();
    let url = cx.http.wechat_url(&format!(
        "/cgi-bin/appmsgpublish?sub=list&search_field=null&begin=0&count=5&query=&fakeid={fakeid}&type=101_1&free_publish_type=1&sub_action=list_ex&token={}&lang=zh_CN&f=json&ajax=1",
        session.token.expose()
    ));
    let cookie = session.cookie.expose().to_string();
    let fetched = match cx
        .http
        .send(cx.run, "list_api", fakeid.as_str(), &host, (RequestClass::ListApi, &host), || {
            cx.http.anonymous.get(&url).header(reqwest::header::COOKIE, &cookie)
        })
        .await
    {
        Ok(fetched) => fetched,
        Err(failure) => return Ok(Listing::failed(failure.into())),
    };
    match api::parse_appmsg_publish(&String::from_utf8_lossy(&fetched.body)) {
        Ok(page) if page.outcome.is_ok() => {
            cx.http.log_answer(cx.run, "list_api", fakeid.as_str(), &fetched, "ok").await;
            Ok(Listing::complete(page.articles.into_iter().map(|a| Found::Listed(Box::new(a))).collect()))
        }
        Ok(page) => {
            cx.http.log_answer(cx.run, "list_api", fakeid.as_str(), &fetched, "throttled").await;
            let cooldown = cx.http.config.crawl.cooldown_max.as_secs() as i64;
            Ok(Listing::failed(SourceFailure::Broken(
                now + cooldown,
                format!("backend list refused: {:?}", page.outcome),
            )))
        }
        Err(error) => Ok(Listing::failed(SourceFailure::Broken(now + 3600, error.to_string()))),
    }
}
