-- A process's heartbeat as a counter. Whether a process is alive is judged by
-- watching its counter move on the watcher's own monotonic clock, never by
-- comparing wall-clock times written by different processes (a clock stepped
-- forward made a live sender look dead).
ALTER TABLE mi_owner ADD COLUMN beat INTEGER NOT NULL DEFAULT 0;
