-- mpwatch schema version 10: an account that published nothing in a period is listed
-- without a rank (rankers do not rank silent accounts), so ranks and rank changes do not
-- swing with who happened to be silent. `index_values.rank` and `rank_change` are NULL
-- for it. Ranks of the others are unchanged: a silent account's indices are 0, the
-- lowest value, so it never ranked above one that published. `v_rankings` gains the
-- period's bounds in unix seconds (`period_start`, `period_end`) beside `first_day`.
DROP VIEW v_rankings;

CREATE TABLE index_values_v10 (
    account_id    INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    period_kind   TEXT NOT NULL,
    period_start  INTEGER NOT NULL,
    index_name    TEXT NOT NULL,                     -- wci-v11, wci-v13, wci-v14.2, wci-v14.2-noshare, nri
    value         REAL NOT NULL,                     -- full double precision
    rank          INTEGER,                           -- competition ranking among the accounts that published; NULL: published nothing
    rank_change   INTEGER,                           -- previous rank - rank (positive: up); NULL if unranked in either
    PRIMARY KEY (account_id, period_kind, period_start, index_name),
    FOREIGN KEY (account_id, period_kind, period_start)
        REFERENCES index_periods (account_id, period_kind, period_start) ON DELETE CASCADE
);
INSERT INTO index_values_v10 (account_id, period_kind, period_start, index_name, value, rank, rank_change)
SELECT v.account_id, v.period_kind, v.period_start, v.index_name, v.value,
       CASE WHEN p.n = 0 THEN NULL ELSE v.rank END,
       CASE WHEN p.n = 0 OR before.n = 0 THEN NULL ELSE v.rank_change END
FROM index_values v
JOIN index_periods p USING (account_id, period_kind, period_start)
LEFT JOIN index_periods before
    ON before.account_id = v.account_id AND before.period_kind = v.period_kind
   AND before.period_end = v.period_start;
DROP TABLE index_values;
ALTER TABLE index_values_v10 RENAME TO index_values;
CREATE INDEX index_values_by_period ON index_values (period_kind, period_start, index_name, rank);

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
       p.provisional,
       v.period_start,                                   -- unix s (new in version 10)
       p.period_end
FROM index_values v
JOIN index_periods p USING (account_id, period_kind, period_start)
JOIN accounts a ON a.id = v.account_id;
