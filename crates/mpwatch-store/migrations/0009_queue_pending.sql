-- mpwatch schema version 9: the queue index that leasing reads holds pending items
-- alone, and the queue keeps no index its reads do not need. An item used to move
-- within two indexes keyed by its state (work_queue_ready, work_queue_due) when it was
-- leased and again when it was done; they were half of the pages a crawl wrote to
-- the WAL. Now a lease takes the item out of work_queue_pending, and finishing it
-- touches no index of pending work.
DROP INDEX work_queue_ready;
DROP INDEX work_queue_due;
CREATE INDEX work_queue_pending ON work_queue (kind, priority, not_before) WHERE state = 'pending';
-- Failed items by kind, for status displays (few: an item fails after all its attempts).
CREATE INDEX work_queue_failed ON work_queue (kind) WHERE state = 'failed';
