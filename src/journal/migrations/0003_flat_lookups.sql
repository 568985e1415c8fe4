-- Lookups that stay flat as the journal grows to millions of rows, and fewer index
-- pages written per commit.
--
-- The counts by state (mi_get_status, the queue depth) and the last request to
-- enter each state (the last success, the last failure) are kept by triggers in a
-- table of eight rows, instead of counted by scanning mi_request.
CREATE TABLE mi_state_count (
    state    TEXT PRIMARY KEY,
    n        INTEGER NOT NULL,
    last_id  INTEGER,                          -- the request that last entered the state
    last_at  TEXT                              -- and when (journal time)
) WITHOUT ROWID;

INSERT INTO mi_state_count(state, n)
VALUES ('queued', 0), ('sending', 0), ('retry_wait', 0), ('succeeded', 0), ('business_error', 0),
       ('failed', 0), ('uncertain', 0), ('reversed', 0);

-- One pass over an existing journal, once, at upgrade.
UPDATE mi_state_count
   SET n = (SELECT count(*) FROM mi_request r WHERE r.state = mi_state_count.state),
       last_id = (SELECT r.id FROM mi_request r WHERE r.state = mi_state_count.state
                   ORDER BY r.updated_at DESC, r.id DESC LIMIT 1),
       last_at = (SELECT max(r.updated_at) FROM mi_request r WHERE r.state = mi_state_count.state);

CREATE TRIGGER mi_request_counted AFTER INSERT ON mi_request
BEGIN
    UPDATE mi_state_count SET n = n + 1, last_id = NEW.id, last_at = NEW.updated_at WHERE state = NEW.state;
END;

CREATE TRIGGER mi_request_recounted AFTER UPDATE OF state ON mi_request
WHEN OLD.state != NEW.state
BEGIN
    UPDATE mi_state_count SET n = n - 1 WHERE state = OLD.state;
    UPDATE mi_state_count SET n = n + 1, last_id = NEW.id, last_at = NEW.updated_at WHERE state = NEW.state;
END;

CREATE TRIGGER mi_request_uncounted AFTER DELETE ON mi_request
BEGIN
    UPDATE mi_state_count SET n = n - 1 WHERE state = OLD.state;
END;

-- The index over every row's state moved an entry at each state change and grew
-- with the finished rows nobody claims. Partial indexes hold only what is looked
-- for: the queue in claim order, the retries by when they are due, and what is
-- unfinished (the oldest of it, for the status).
DROP INDEX mi_request_state;
CREATE INDEX mi_request_ready ON mi_request(priority DESC, id) WHERE state = 'queued';
CREATE INDEX mi_request_due ON mi_request(next_at) WHERE state = 'retry_wait';
CREATE INDEX mi_request_unfinished ON mi_request(id) WHERE state IN ('queued', 'sending', 'retry_wait');

-- updated_at changes at every step of a request, and its index with it; created_at
-- never changes. Retention and the operator's date filters go by creation.
DROP INDEX mi_request_updated;
CREATE INDEX mi_request_created ON mi_request(created_at);

-- Deleting a request (retention) looks for the rows that refer to it: without
-- these, every deleted row scanned the whole requests table twice.
CREATE INDEX mi_request_reversal_of ON mi_request(reversal_of) WHERE reversal_of IS NOT NULL;
CREATE INDEX mi_request_reversed_by ON mi_request(reversed_by) WHERE reversed_by IS NOT NULL;
CREATE INDEX mi_signin_request ON mi_signin(request_id);
