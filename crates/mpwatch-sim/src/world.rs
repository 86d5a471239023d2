//! The simulated world: accounts, their pushes and articles, and every article's counts
//! at any instant. Nothing is stored: each article is a pure function of the seed, its
//! account and its day, so a world of 100k+ articles costs a few kilobytes.

use mpwatch_core::{ArticleKey, ArticleKind, ArticleStatus, Biz, Copyright};
use serde::{Deserialize, Serialize};

/// Seconds in a day.
pub const DAY: i64 = 86_400;
/// Beijing is UTC+8: pushes follow the local day.
const BEIJING_OFFSET: i64 = 8 * 3600;
/// Read counts above this are displayed as 100001 ("10万+").
pub const READS_DISPLAY_CAP: i64 = 100_001;
/// The first `mid` of every account (mids step by 7 per day, plus a per-day jitter).
const MID_BASE: u64 = 2_247_480_000;

/// A 64-bit mix (splitmix64 finaliser): the world's only source of randomness.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A deterministic hash of several values.
pub fn hash(parts: &[u64]) -> u64 {
    parts.iter().fold(0x51_7C_C1_B7_27_22_0A_95, |acc, part| mix(acc ^ part.wrapping_mul(0x100_0000_01B3)))
}

/// A number in [0, 1) from a hash.
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// How a world is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorldConfig {
    /// Everything derives from it.
    pub seed: u64,
    /// Accounts besides the four publishing-world ones.
    pub synthetic_accounts: usize,
    /// First day of history (unix seconds; pushes happen from this day on).
    pub start: i64,
    /// Share of accounts whose pages use the 2018 layout.
    pub legacy_share: f64,
}

/// An account of the world.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimAccount {
    /// Position in the world.
    pub index: usize,
    /// The numeric id the biz encodes.
    pub numeric_id: u64,
    /// `__biz`.
    pub biz: Biz,
    /// `gh_` id.
    pub username: String,
    /// 微信号, if any.
    pub alias: Option<String>,
    /// Display name.
    pub nickname: String,
    /// Typical final reads of a headline.
    pub headline_reads: f64,
    /// Chance of a push on a given day.
    pub post_probability: f64,
    /// Most articles per push (1-8).
    pub max_articles: u8,
    /// 在看 per read.
    pub wow_ratio: f64,
    /// 赞 per read.
    pub like_ratio: f64,
    /// Shares per read.
    pub share_ratio: f64,
    /// Comments per read.
    pub comment_ratio: f64,
    /// Pages in the 2018 layout.
    pub legacy_layout: bool,
}

/// The four accounts mpwatch was first asked about, with sizes from their 2022
/// read rates (average daily reads).
const PUBLISHING_ACCOUNTS: &[(&str, Option<&str>, f64, u64)] = &[
    ("环球科学", Some("huanqiukexue"), 47_325.0, 2_390_011_001),
    ("科研圈", Some("keyanquan"), 38_318.0, 3_010_022_002),
    ("中科院之声", Some("zkyzswx"), 26_700.0, 3_200_033_003),
    ("学术志", None, 35_316.0, 3_090_044_004),
];

const NAME_PARTS_A: &[&str] =
    &["科学", "前沿", "学术", "知识", "自然", "数理", "生命", "星空", "材料", "医学", "智能", "地球"];
const NAME_PARTS_B: &[&str] = &["观察", "周刊", "速递", "评论", "之声", "研究院", "实验室", "手记", "时报", "讲堂"];

fn biz_of(numeric_id: u64) -> Biz {
    use base64::Engine as _;
    Biz::parse(&base64::engine::general_purpose::STANDARD.encode(numeric_id.to_string()))
        .expect("digits encode to a biz")
}

/// One article of the world.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimArticle {
    /// Its account's index.
    pub account: usize,
    /// Day number since the world's start.
    pub day: u32,
    /// Key.
    pub key: ArticleKey,
    /// Signature.
    pub sn: String,
    /// Publication instant.
    pub published_at: i64,
    /// Message kind.
    pub kind: ArticleKind,
    /// Originality.
    pub copyright: Copyright,
    /// Title.
    pub title: String,
    /// Summary.
    pub digest: String,
    /// Author line.
    pub author: String,
    /// Comment thread id.
    pub comment_id: u64,
    /// Final reads (true value, before the display cap).
    pub final_reads: f64,
    /// Time constant of the growth curve, seconds.
    pub tau: f64,
    /// When the publisher deletes it, if ever.
    pub deleted_at: Option<i64>,
    /// When it is blocked for a violation, if ever.
    pub blocked_at: Option<i64>,
    /// The stated reason when blocked.
    pub blocked_reason: Option<String>,
    /// For reposts: the original account's name.
    pub original_account: Option<String>,
    /// Paragraphs of body text.
    pub paragraphs: u32,
    /// Images in the body.
    pub images: u32,
}

/// Counts of an article at one instant, as WeChat displays them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimCounts {
    /// 阅读 as displayed (100001 for 10万+).
    pub reads: i64,
    /// The display cap applied.
    pub reads_capped: bool,
    /// 赞 (`old_like_num`).
    pub likes: i64,
    /// 在看 (`like_num`).
    pub wows: i64,
    /// Shares.
    pub shares: i64,
    /// Comments.
    pub comments: i64,
}

const BLOCK_REASONS: &[&str] = &["涉嫌过度营销、骚扰用户", "violating relevant laws and regulations", "涉嫌侵权"];

impl SimArticle {
    /// The status at `t`.
    pub fn status_at(&self, t: i64) -> ArticleStatus {
        if self.blocked_at.is_some_and(|b| t >= b) {
            ArticleStatus::Blocked
        } else if self.deleted_at.is_some_and(|d| t >= d) {
            ArticleStatus::Deleted
        } else {
            ArticleStatus::Ok
        }
    }

    /// Counts at `t`: a saturating curve (most reads in the first 48 h), frozen once
    /// the article is gone. Monotone in `t` by construction.
    pub fn counts_at(&self, account: &SimAccount, t: i64) -> SimCounts {
        let end = [self.deleted_at, self.blocked_at].into_iter().flatten().min().map_or(t, |gone| t.min(gone));
        let age = (end - self.published_at).max(0) as f64;
        let true_reads = (self.final_reads * (1.0 - (-age / self.tau).exp())).floor() as i64;
        let per = |ratio: f64| (true_reads as f64 * ratio).floor() as i64;
        SimCounts {
            reads: if true_reads >= READS_DISPLAY_CAP { READS_DISPLAY_CAP } else { true_reads },
            reads_capped: true_reads >= READS_DISPLAY_CAP,
            likes: per(account.like_ratio),
            wows: per(account.wow_ratio),
            shares: per(account.share_ratio),
            comments: per(account.comment_ratio),
        }
    }

    /// `item_show_type` of the kind.
    pub fn item_show_type(&self) -> i64 {
        match self.kind {
            ArticleKind::Article => 0,
            ArticleKind::Video => 5,
            ArticleKind::Audio => 7,
            ArticleKind::Picture => 8,
            ArticleKind::Text => 10,
        }
    }
}

/// The world: accounts plus the rules that generate their articles.
#[derive(Debug, Clone)]
pub struct World {
    config: WorldConfig,
    accounts: Vec<SimAccount>,
    start_day: i64,
}

const TOPICS: &[&str] = &[
    "黑洞",
    "量子计算",
    "基因编辑",
    "气候变化",
    "人工智能",
    "暗物质",
    "疫苗",
    "深海",
    "火星",
    "超导",
    "脑科学",
    "古生物",
];
const ANGLES: &[&str] =
    &["最新发现", "十个问题", "背后的故事", "为什么重要", "争议与共识", "一张图看懂", "前沿综述", "访谈"];
const SENTENCES: &[&str] = &[
    "研究团队在最新一期期刊上发表了这一成果。",
    "这项工作历时五年，涉及来自十二个国家的合作者。",
    "科学家们认为，这一发现可能改变我们对该领域的理解。",
    "不过，也有学者提出了不同的看法，认为需要更多数据支持。",
    "实验结果显示，新方法的效率提高了近三倍。",
    "该研究得到了国家自然科学基金的资助。",
    "未来，研究者计划在更大规模的样本上验证这一结论。",
    "这也提醒我们，科学进步往往来自意想不到的方向。",
];
const AUTHORS: &[&str] = &["张三", "李明", "王芳", "编辑部", "陈静", "刘洋"];

impl World {
    /// Builds the accounts of a world.
    pub fn new(config: WorldConfig) -> World {
        let seed = config.seed;
        let mut accounts: Vec<SimAccount> = Vec::new();
        let total = PUBLISHING_ACCOUNTS.len() + config.synthetic_accounts;
        for index in 0..total {
            let h = |salt: u64| hash(&[seed, index as u64, salt]);
            let (nickname, alias, daily_reads, numeric_id) = match PUBLISHING_ACCOUNTS.get(index) {
                Some((name, alias, reads, id)) => (name.to_string(), alias.map(str::to_string), *reads, *id),
                None => {
                    let name = format!(
                        "{}{}{}",
                        NAME_PARTS_A[(h(1) % NAME_PARTS_A.len() as u64) as usize],
                        NAME_PARTS_B[(h(2) % NAME_PARTS_B.len() as u64) as usize],
                        index
                    );
                    // Sizes spread over three orders of magnitude; a few giants cross 10万+.
                    let reads = 300.0 * (7.0 * unit(h(3))).exp();
                    let reads = if index % 17 == 5 { 180_000.0 } else { reads };
                    let alias = (h(4) % 3 != 0).then(|| format!("sim{:x}", h(5) % 0xFFFF_FFFF));
                    (name, alias, reads, 3_000_000_000 + (h(6) % 999_999_999))
                }
            };
            let max_articles = 1 + (h(7) % 8) as u8;
            let post_probability = 0.55 + 0.45 * unit(h(8));
            // Headline reads: a push of n articles shares the day's reads, headline first.
            let headline_reads =
                daily_reads / post_probability / (1.0 + 0.4 * f64::from(max_articles - 1)).max(1.0) * 1.6;
            accounts.push(SimAccount {
                index,
                numeric_id,
                biz: biz_of(numeric_id),
                username: format!("gh_{:012x}", h(9) & 0xFFFF_FFFF_FFFF),
                alias,
                nickname,
                headline_reads,
                post_probability,
                max_articles,
                wow_ratio: 0.004 + 0.012 * unit(h(10)),
                like_ratio: 0.008 + 0.02 * unit(h(11)),
                share_ratio: 0.02 + 0.06 * unit(h(12)),
                comment_ratio: 0.0008 + 0.004 * unit(h(13)),
                legacy_layout: unit(h(14)) < config.legacy_share,
            });
        }
        let start_day = (config.start + BEIJING_OFFSET).div_euclid(DAY);
        World { config, accounts, start_day }
    }

    /// The world's configuration.
    pub fn config(&self) -> &WorldConfig {
        &self.config
    }

    /// Every account.
    pub fn accounts(&self) -> &[SimAccount] {
        &self.accounts
    }

    /// The account with this biz.
    pub fn account_by_biz(&self, biz: &Biz) -> Option<&SimAccount> {
        self.accounts.iter().find(|a| &a.biz == biz)
    }

    fn day_start(&self, day: u32) -> i64 {
        (self.start_day + i64::from(day)) * DAY - BEIJING_OFFSET
    }

    /// The day number of instant `t` (negative before the start).
    pub fn day_of(&self, t: i64) -> i64 {
        (t + BEIJING_OFFSET).div_euclid(DAY) - self.start_day
    }

    /// The push of `account` on `day`: (mid, publication time, number of articles).
    pub fn push(&self, account: &SimAccount, day: u32) -> Option<(u64, i64, u8)> {
        let h = |salt: u64| hash(&[self.config.seed, account.index as u64, u64::from(day), salt]);
        if unit(h(20)) >= account.post_probability {
            return None;
        }
        let mid = MID_BASE + u64::from(day) * 7 + h(21) % 7;
        let published_at = self.day_start(day) + 7 * 3600 + (h(22) % (15 * 3600)) as i64;
        let articles = 1 + (h(23) % u64::from(account.max_articles)) as u8;
        Some((mid, published_at, articles))
    }

    /// One article, if it exists (whatever the time).
    pub fn article(&self, account: &SimAccount, day: u32, idx: u8) -> Option<SimArticle> {
        let (mid, published_at, count) = self.push(account, day)?;
        if idx == 0 || idx > count {
            return None;
        }
        let seed = self.config.seed;
        let h = |salt: u64| hash(&[seed, account.index as u64, u64::from(day), u64::from(idx), salt]);
        let kind = match h(30) % 100 {
            0..=83 => ArticleKind::Article,
            84..=90 => ArticleKind::Picture,
            91..=96 => ArticleKind::Text,
            97..=98 => ArticleKind::Video,
            _ => ArticleKind::Audio,
        };
        let copyright = match (kind, h(31) % 10) {
            (ArticleKind::Article, 0..=4) => Copyright::Original,
            (ArticleKind::Article, 5..=6) => Copyright::Repost,
            _ => Copyright::None,
        };
        let position_share = if idx == 1 { 1.0 } else { 0.25 + 0.35 * unit(h(32)) };
        // Log-normal-ish spread around the account's size.
        let spread = (1.2 * (unit(h(33)) + unit(h(34)) + unit(h(35)) - 1.5)).exp();
        let final_reads = account.headline_reads * position_share * spread;
        let tau = (8.0 + 16.0 * unit(h(36))) * 3600.0;
        let gone_after = published_at + DAY + (h(37) % (10 * DAY as u64)) as i64;
        let fate = h(38) % 1000;
        let (deleted_at, blocked_at) = match fate {
            0..=14 => (Some(gone_after), None),
            15..=21 => (None, Some(gone_after)),
            _ => (None, None),
        };
        let topic = TOPICS[(h(39) % TOPICS.len() as u64) as usize];
        let angle = ANGLES[(h(40) % ANGLES.len() as u64) as usize];
        let title = match kind {
            ArticleKind::Text => format!("今日{topic}短讯：{angle}"),
            ArticleKind::Picture => format!("图说{topic}｜{angle}"),
            _ => format!("{topic}：{angle}（第{}期）", day + 1),
        };
        let original_account = (copyright == Copyright::Repost).then(|| {
            let other = &self.accounts[(h(41) % self.accounts.len() as u64) as usize];
            other.nickname.clone()
        });
        Some(SimArticle {
            account: account.index,
            day,
            key: ArticleKey { biz: account.biz.clone(), mid, idx: u32::from(idx) },
            sn: format!("{:016x}{:016x}", h(42), h(43)),
            published_at,
            kind,
            copyright,
            digest: format!("关于{topic}的{angle}，{}", SENTENCES[(h(44) % SENTENCES.len() as u64) as usize]),
            title,
            author: AUTHORS[(h(45) % AUTHORS.len() as u64) as usize].to_string(),
            comment_id: 4_000_000_000_000_000_000 + h(46) % 999_999_999_999_999_999,
            final_reads,
            tau,
            deleted_at,
            blocked_at,
            blocked_reason: blocked_at
                .map(|_| BLOCK_REASONS[(h(47) % BLOCK_REASONS.len() as u64) as usize].to_string()),
            original_account,
            paragraphs: 3 + (h(48) % 12) as u32,
            images: match kind {
                ArticleKind::Picture => 1 + (h(49) % 6) as u32,
                ArticleKind::Text => 0,
                _ => (h(49) % 8) as u32,
            },
        })
    }

    /// The article with this key, if it exists and is published by `t`.
    pub fn article_by_key(&self, key: &ArticleKey, t: i64) -> Option<(&SimAccount, SimArticle)> {
        let account = self.account_by_biz(&key.biz)?;
        let offset = key.mid.checked_sub(MID_BASE)?;
        let day = u32::try_from(offset / 7).ok()?;
        let article = self.article(account, day, u8::try_from(key.idx).ok()?)?;
        (article.key.mid == key.mid && article.published_at <= t).then_some((account, article))
    }

    /// The days with pushes of `account` published by `t`, newest first.
    pub fn push_days_desc(&self, account: &SimAccount, t: i64) -> impl Iterator<Item = u32> + '_ {
        let today = self.day_of(t);
        let account = account.clone();
        let newest = u32::try_from(today.max(-1) + 1).unwrap_or(0);
        (0..newest).rev().filter(move |day| self.push(&account, *day).is_some_and(|(_, published, _)| published <= t))
    }

    /// Every article of `account` published by `t`, newest push first, positions in order.
    pub fn articles_of(&self, account: &SimAccount, t: i64) -> Vec<SimArticle> {
        self.push_days_desc(account, t)
            .flat_map(|day| {
                let count = self.push(account, day).map_or(0, |(_, _, n)| n);
                (1..=count).filter_map(move |idx| self.article(account, day, idx))
            })
            .collect()
    }

    /// The number of articles published by `t` in the whole world.
    pub fn article_count(&self, t: i64) -> usize {
        self.accounts.iter().map(|a| self.articles_of(a, t).len()).sum()
    }

    /// The short-link token of an article: reversible, so nothing is stored.
    pub fn short_token(&self, article: &SimArticle) -> String {
        use base64::Engine as _;
        let mut bytes = [0u8; 16];
        bytes[0..4].copy_from_slice(&(article.account as u32).to_le_bytes());
        bytes[4..8].copy_from_slice(&article.day.to_le_bytes());
        bytes[8] = article.key.idx as u8;
        let check =
            hash(&[self.config.seed, article.account as u64, u64::from(article.day), u64::from(article.key.idx), 99]);
        bytes[9..16].copy_from_slice(&check.to_le_bytes()[..7]);
        let mask = hash(&[self.config.seed, 0x5EED]).to_le_bytes();
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte ^= mask[i % 8].rotate_left(i as u32);
        }
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The article a short-link token names, if valid.
    pub fn article_by_token(&self, token: &str) -> Option<(&SimAccount, SimArticle)> {
        use base64::Engine as _;
        let mut bytes: [u8; 16] =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok()?.try_into().ok()?;
        let mask = hash(&[self.config.seed, 0x5EED]).to_le_bytes();
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte ^= mask[i % 8].rotate_left(i as u32);
        }
        let account = u32::from_le_bytes(bytes[0..4].try_into().ok()?) as usize;
        let day = u32::from_le_bytes(bytes[4..8].try_into().ok()?);
        let idx = bytes[8];
        let check = hash(&[self.config.seed, account as u64, u64::from(day), u64::from(idx), 99]);
        if bytes[9..16] != check.to_le_bytes()[..7] {
            return None;
        }
        let account = self.accounts.get(account)?;
        Some((account, self.article(account, day, idx)?))
    }

    /// Body paragraphs of an article.
    pub fn paragraphs(&self, article: &SimArticle) -> Vec<String> {
        (0..article.paragraphs)
            .map(|p| {
                let h = hash(&[
                    self.config.seed,
                    article.account as u64,
                    u64::from(article.day),
                    u64::from(article.key.idx),
                    100 + u64::from(p),
                ]);
                (0..3 + h % 4)
                    .map(|s| SENTENCES[((h >> (s * 5)) % SENTENCES.len() as u64) as usize])
                    .collect::<String>()
            })
            .collect()
    }

    /// Image URLs of an article (never fetched).
    pub fn image_urls(&self, article: &SimArticle) -> Vec<String> {
        (0..article.images)
            .map(|i| {
                format!(
                    "https://mmbiz.qpic.cn/sim_jpg/{}/{}_{}_{i}/0?wx_fmt=jpeg",
                    article.key.biz.numeric_id(),
                    article.key.mid,
                    article.key.idx
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        World::new(WorldConfig { seed: 42, synthetic_accounts: 30, start: 1_760_000_000, legacy_share: 0.2 })
    }

    #[test]
    fn same_seed_same_world() {
        let (a, b) = (world(), world());
        let t = 1_760_000_000 + 20 * DAY;
        assert_eq!(a.accounts(), b.accounts());
        for account in a.accounts() {
            assert_eq!(a.articles_of(account, t), b.articles_of(&b.accounts()[account.index], t));
        }
        let other = World::new(WorldConfig { seed: 43, ..a.config().clone() });
        assert_ne!(other.accounts()[5].nickname, a.accounts()[5].nickname);
    }

    #[test]
    fn publishing_accounts_are_there() {
        let world = world();
        let names: Vec<_> = world.accounts()[..4].iter().map(|a| (a.nickname.as_str(), a.alias.as_deref())).collect();
        assert_eq!(
            names,
            vec![
                ("环球科学", Some("huanqiukexue")),
                ("科研圈", Some("keyanquan")),
                ("中科院之声", Some("zkyzswx")),
                ("学术志", None)
            ]
        );
    }

    #[test]
    fn counts_grow_monotonically_and_cap_display() {
        let world = world();
        let t_end = 1_760_000_000 + 30 * DAY;
        let mut capped = 0;
        for account in world.accounts() {
            for article in world.articles_of(account, t_end) {
                let mut previous = article.counts_at(account, article.published_at);
                assert_eq!(previous.reads, 0);
                for step in 1..40 {
                    let counts = article.counts_at(account, article.published_at + step * 3 * 3600);
                    assert!(
                        counts.reads >= previous.reads
                            && counts.wows >= previous.wows
                            && counts.likes >= previous.likes
                    );
                    assert!(counts.reads <= READS_DISPLAY_CAP);
                    previous = counts;
                }
                capped += usize::from(previous.reads_capped);
            }
        }
        assert!(capped > 0, "the largest accounts cross 10万+");
    }

    #[test]
    fn most_reads_come_in_the_first_two_days() {
        let world = world();
        let account = &world.accounts()[0];
        for article in world
            .articles_of(account, 1_760_000_000 + 30 * DAY)
            .iter()
            .filter(|a| a.status_at(i64::MAX) == ArticleStatus::Ok)
        {
            let two_days = article.counts_at(account, article.published_at + 2 * DAY).reads as f64;
            let month = article.counts_at(account, article.published_at + 30 * DAY).reads as f64;
            assert!(two_days >= 0.85 * month, "{two_days} of {month}");
        }
    }

    #[test]
    fn keys_and_tokens_find_their_article() {
        let world = world();
        let t = 1_760_000_000 + 10 * DAY;
        for account in world.accounts().iter().take(6) {
            for article in world.articles_of(account, t) {
                let (_, by_key) = world.article_by_key(&article.key, t).unwrap();
                assert_eq!(by_key, article);
                let token = world.short_token(&article);
                assert_eq!(token.len(), 22);
                assert_eq!(world.article_by_token(&token).unwrap().1, article);
            }
        }
        assert!(world.article_by_token("AAAAAAAAAAAAAAAAAAAAAA").is_none());
    }

    #[test]
    fn pushes_have_one_to_eight_articles_headline_first() {
        let world = world();
        let t = 1_760_000_000 + 30 * DAY;
        let mut sizes = std::collections::BTreeSet::new();
        for account in world.accounts() {
            for day in world.push_days_desc(account, t) {
                let (_, _, n) = world.push(account, day).unwrap();
                sizes.insert(n);
                assert_eq!(world.article(account, day, 1).unwrap().key.idx, 1);
                assert!(world.article(account, day, n + 1).is_none());
            }
        }
        assert_eq!(sizes.first(), Some(&1));
        assert_eq!(sizes.last(), Some(&8));
    }
}
