-- mpwatch schema version 6: leasing reads due work in index order. A service's queue
-- holds every future ladder rung of every article, so a lease must never sort the
-- whole queue: it walks, per kind and priority, the pending items oldest first, and the
-- expired leases by their expiry. docs/schema.md documents every index.
CREATE INDEX work_queue_due ON work_queue (kind, state, priority, not_before);
CREATE INDEX work_queue_lease_expiry ON work_queue (lease_until) WHERE state = 'leased';
