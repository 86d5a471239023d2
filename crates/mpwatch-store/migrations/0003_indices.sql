-- mpwatch schema version 3: derived indices and rankings (written by mpwatch-index).

-- Aggregates of one account over one period.
CREATE TABLE index_periods (
    account_id            INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    period_kind           TEXT NOT NULL CHECK (period_kind IN ('day', 'week', 'month', 'custom')),
    period_start          INTEGER NOT NULL,          -- unix s, local midnight of the first day
    period_end            INTEGER NOT NULL,          -- unix s, exclusive
    first_day             TEXT NOT NULL,             -- YYYY-MM-DD in the calendar's zone
    d                     REAL NOT NULL,             -- days as the rankers count them
    n                     INTEGER NOT NULL,          -- articles published in the period
    pushes                INTEGER NOT NULL,
    headlines             INTEGER NOT NULL,
    reads                 REAL NOT NULL,             -- R (10万+ counts as 100001)
    reads_headline        REAL NOT NULL,             -- Rt
    reads_max             REAL NOT NULL,             -- Rmax
    wows                  REAL NOT NULL,             -- Z (在看)
    wows_headline         REAL NOT NULL,
    wows_max              REAL NOT NULL,
    likes                 REAL NOT NULL,             -- L (点赞)
    likes_headline        REAL NOT NULL,
    likes_max             REAL NOT NULL,
    shares                REAL NOT NULL,             -- RE
    shares_headline       REAL NOT NULL,
    shares_max            REAL NOT NULL,
    comments              INTEGER NOT NULL,
    comments_headline     INTEGER NOT NULL,
    comments_max          INTEGER NOT NULL,
    engagement_rate       REAL NOT NULL,             -- (Z + L) / R
    read_rate             REAL NOT NULL,             -- R / d
    reads_gained_per_day  REAL,                      -- from snapshot differences, all articles
    late_articles         INTEGER NOT NULL,          -- values observed late
    provisional           INTEGER NOT NULL CHECK (provisional IN (0, 1)),
    computed_at           INTEGER NOT NULL,
    PRIMARY KEY (account_id, period_kind, period_start)
);

-- Index values and ranks; every value names its formula.
CREATE TABLE index_values (
    account_id    INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    period_kind   TEXT NOT NULL,
    period_start  INTEGER NOT NULL,
    index_name    TEXT NOT NULL,                     -- wci-v11, wci-v13, wci-v14.2, wci-v14.2-noshare, nri
    value         REAL NOT NULL,                     -- full double precision
    rank          INTEGER NOT NULL,                  -- competition ranking among tracked accounts
    rank_change   INTEGER,                           -- previous rank - rank (positive: up); NULL if unranked before
    PRIMARY KEY (account_id, period_kind, period_start, index_name),
    FOREIGN KEY (account_id, period_kind, period_start)
        REFERENCES index_periods (account_id, period_kind, period_start) ON DELETE CASCADE
);
CREATE INDEX index_values_by_period ON index_values (period_kind, period_start, index_name, rank);

-- What the last `mpwatch index` run had seen (for incremental recompute).
CREATE TABLE index_state (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    last_article_id   INTEGER NOT NULL,
    last_snapshot_id  INTEGER NOT NULL,
    computed_at       INTEGER NOT NULL
);

-- Rankings as rankers print them.
CREATE VIEW v_rankings AS
SELECT v.period_kind,
       p.first_day,
       v.index_name,
       v.rank,
       v.rank_change,
       coalesce(a.nickname, a.alias, a.biz) AS account_name,
       v.account_id,
       p.n, p.reads, p.reads / nullif(p.n, 0) AS reads_per_article, p.reads_max, p.reads_headline,
       p.wows, p.likes, p.shares, p.comments, p.engagement_rate, p.read_rate,
       v.value,
       p.late_articles,
       p.provisional
FROM index_values v
JOIN index_periods p USING (account_id, period_kind, period_start)
JOIN accounts a ON a.id = v.account_id;
