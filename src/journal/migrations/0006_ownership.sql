-- Ownership by lease and lock (docs/delivery.md, "Ownership").
--
-- A process's heartbeat as a counter. Whether a process is alive is judged by
-- watching its heartbeat change on the watcher's own monotonic clock, never by
-- comparing wall-clock times written by different processes (a clock stepped
-- forward made a live sender look dead).
ALTER TABLE mi_owner ADD COLUMN beat INTEGER NOT NULL DEFAULT 0;

-- Sync requests whose caller died were put back in the queue by earlier versions
-- and would be sent by a worker with nobody waiting (a cashier who fell back to
-- cash: the patient and the fund both pay). Waiting unowned, they provably never
-- left since they were put back: they end failed, never sent. Only async requests
-- are driven by whichever process finds them.
UPDATE mi_request
   SET state = 'failed', mi_code = -13, next_at = NULL,
       last_error = 'its calling program stopped before it was sent; never sent',
       result = json_object('infcode', -1,
                            'err_msg', 'its calling program stopped before it was sent; never sent',
                            'mi_code', -13, 'msgid', msgid)
 WHERE mode = 'sync' AND owner IS NULL AND state IN ('queued', 'retry_wait');
