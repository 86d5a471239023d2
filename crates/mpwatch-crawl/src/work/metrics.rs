//! A `metrics` item: one `getappmsgext` call with a pooled credential, stored as the
//! snapshot of the rung the article's age has reached.

use mpwatch_core::ArticleStatus;
use mpwatch_core::time::UnixSeconds;
use mpwatch_store::articles::Snapshot;
use mpwatch_store::queue::WorkItem;
use mpwatch_store::{StoreError, Tx};
use mpwatch_wechat::api::{self, ApiOutcome};
use mpwatch_wechat::page::PageKind;

use super::{METRICS, Outcome};
use crate::alerts::expire_credential;
use crate::cooldown::Scope;
use crate::engine::Engine;
use crate::error::CrawlError;
use crate::ladder::{ladder, next_rung, rung_for_age};
use crate::progress::Progress;
use crate::rate_limit::RequestClass;
use crate::run::RunScope;

/// The priority of ladder rungs: below `--url`s and discovery, above re-checks.
pub(crate) const RUNG_PRIORITY: i64 = 5;

/// The target of the metrics item that takes an article's `rung`: the one place that
/// writes it (`<article id>:<rung>`, which [`Engine::metrics`] reads back).
pub(crate) fn rung_target(article_id: i64, rung: i64) -> String {
    format!("{article_id}:{rung}")
}

/// Queues the metrics item that takes an article's `rung` at `at`.
pub(crate) fn queue_rung(
    tx: &Tx<'_>,
    article_id: i64,
    rung: i64,
    at: UnixSeconds,
    now: UnixSeconds,
) -> Result<(), StoreError> {
    tx.enqueue(METRICS, &rung_target(article_id, rung), RUNG_PRIORITY, at, now)
}

impl Engine {
    /// Handles a metrics item: one `getappmsgext` call with a pooled credential.
    pub(crate) async fn metrics(&self, run: &RunScope, item: &WorkItem) -> Result<Outcome, CrawlError> {
        let Some((article_id, rung)) =
            item.target.split_once(':').and_then(|(a, r)| Some((a.parse::<i64>().ok()?, r.parse::<i64>().ok()?)))
        else {
            return Ok(Outcome::Fail(format!("bad metrics target {}", item.target)));
        };
        let Some(article) = self.db.call(move |store| store.article_by_id(article_id)).await? else {
            return Ok(Outcome::Fail("article no longer stored".into()));
        };
        let id = item.id;
        let now = self.now();
        let published = article.published_at.unwrap_or(now);
        let item_rung = rung;
        let following = next_rung(&self.rungs, published, rung);
        if article.status != ArticleStatus::Ok || following.is_some_and(|(_, due)| now >= due) {
            // Gone, or a later rung is already due and takes the counts (queued here:
            // each rung queues the next).
            let (rungs, live) = (self.rungs.clone(), article.status == ArticleStatus::Ok);
            let holder = self.holder.clone();
            self.db
                .write(move |tx| {
                    if live {
                        for (rung, at) in ladder(&rungs, published, now, &tx.rungs_taken(article_id)?) {
                            queue_rung(tx, article_id, rung, at, now)?;
                        }
                    }
                    tx.complete_work(id, Some(&holder), now).map(drop)
                })
                .await?;
            return Ok(Outcome::Done);
        }
        let host = self.http.wechat_host();
        loop {
            let now = self.now();
            let Some(credential) = self.pool.acquire(now) else {
                return Ok(Outcome::Postpone(self.wait_here_or_give_back(now + 60), "pending credentials".into()));
            };
            if let Some(until) = self.cooldowns.cooling_until(Scope::Credential, &credential.name).await? {
                self.pool.cool(&credential.name, until);
                continue;
            }
            if let Some(until) = self.credential_leases.busy_until(&credential.name).await? {
                self.pool.cool(&credential.name, until);
                continue;
            }
            let client = self.http.client_for(&credential);
            let url = self.http.wechat_url(&format!(
                "/mp/getappmsgext?appmsg_token={}&x5=0&f=json&uin={}&key={}&pass_ticket={}",
                credential.appmsg_token.expose(),
                credential.uin.expose(),
                credential.key.expose(),
                credential.pass_ticket.expose()
            ));
            let form = [
                ("__biz", article.biz.to_string()),
                ("mid", article.mid.to_string()),
                ("sn", article.sn.clone().unwrap_or_default()),
                ("idx", article.idx.to_string()),
                ("comment_id", article.comment_id.clone().unwrap_or_default()),
                ("appmsg_type", "9".to_string()),
                ("is_only_read", "1".to_string()),
                ("is_temp_url", "0".to_string()),
            ];
            let cookie = credential.cookie.as_ref().map(|c| c.expose().to_string());
            let log_target = article.url.clone();
            let fetched = match self
                .http
                .send(run, "count_api", &log_target, &host, (RequestClass::CountApi, &credential.name), || {
                    let request = client.post(&url).form(&form);
                    match &cookie {
                        Some(cookie) => request.header(reqwest::header::COOKIE, cookie),
                        None => request,
                    }
                })
                .await
            {
                Ok(fetched) => fetched,
                Err(failure) if failure.host_down => return Ok(Outcome::Postpone(failure.retry_at, failure.message)),
                Err(failure) => return Ok(Outcome::Retry(failure.retry_at, failure.message)),
            };
            let body = String::from_utf8_lossy(&fetched.body).into_owned();
            let answer = match api::parse_appmsgext(&body) {
                Ok(answer) => answer,
                Err(_) if mpwatch_wechat::parse_page(&fetched.body).kind == PageKind::Verification => {
                    self.http.log_answer(run, "count_api", &log_target, &fetched, "verification").await;
                    let until = self
                        .cooldowns
                        .enter(&run.progress, Scope::Host, &host, "verification page on count API")
                        .await?;
                    return Ok(Outcome::Postpone(until, "verification page".into()));
                }
                Err(error) => return Ok(Outcome::Retry(self.now() + 300, error.to_string())),
            };
            match answer.outcome {
                ApiOutcome::Ok => {
                    self.http.log_answer(run, "count_api", &log_target, &fetched, "ok").await;
                    self.cooldowns.clear_after_success(Scope::Credential, &credential.name).await?;
                    let Some(counts) = answer.counts else {
                        return Ok(Outcome::Retry(self.now() + 300, "answer without counts".into()));
                    };
                    let observed_at = self.now();
                    // The rung is decided by the true age at observation: on a fast clock
                    // (or a slow answer) the age may have crossed into the next window.
                    let rung = rung_for_age(&self.rungs, observed_at - published);
                    let snapshot = Snapshot {
                        observed_at,
                        rung_seconds: Some(rung),
                        reads: counts.reads,
                        reads_capped: counts.reads_capped,
                        likes: counts.likes,
                        wows: counts.wows,
                        shares: counts.shares,
                        comments: counts.comments,
                        source: "getappmsgext".into(),
                    };
                    let next = next_rung(&self.rungs, published, rung.max(item_rung));
                    let holder = self.holder.clone();
                    let inserted = self
                        .db
                        .write(move |tx| {
                            let inserted = tx.insert_snapshot(article_id, &snapshot)?;
                            if let Some((next, at)) = next {
                                queue_rung(tx, article_id, next, at, observed_at)?;
                            }
                            tx.complete_work(id, Some(&holder), observed_at)?;
                            Ok(inserted)
                        })
                        .await?;
                    if inserted.is_some() {
                        Progress::bump(&run.progress.snapshots);
                    }
                    return Ok(Outcome::Done);
                }
                ApiOutcome::SessionExpired { .. } => {
                    self.http.log_answer(run, "count_api", &log_target, &fetched, "expired_credential").await;
                    expire_credential(&self.pool, &self.db, &self.alerts, &credential.name, self.now()).await?;
                }
                ApiOutcome::FrequencyControl { code } => {
                    self.http.log_answer(run, "count_api", &log_target, &fetched, "throttled").await;
                    let until = self
                        .cooldowns
                        .enter(
                            &run.progress,
                            Scope::Credential,
                            &credential.name,
                            &format!("frequency control ({code})"),
                        )
                        .await?;
                    self.pool.cool(&credential.name, until);
                }
                other => return Ok(Outcome::Retry(self.now() + 600, format!("{other:?}"))),
            }
        }
    }
}
