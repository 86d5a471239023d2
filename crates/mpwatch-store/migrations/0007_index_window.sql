-- mpwatch schema version 7: indices are recomputed over a sliding window. A day's
-- recompute reads the snapshots observed in the window (by time, not by scanning the
-- history), and `mpwatch index` with nothing new returns at once: index_state also
-- records which accounts the stored tables were computed for.
CREATE INDEX metric_snapshots_by_time ON metric_snapshots (observed_at);
-- Recomputing a period replaces its rows, and finds the next period, without scanning
-- every period stored.
CREATE INDEX index_periods_by_period ON index_periods (period_kind, period_start);
ALTER TABLE index_state ADD COLUMN accounts_fingerprint TEXT NOT NULL DEFAULT '';
