-- The journal: every request the SDK accepted, every attempt to send it, the
-- sign-ins of the day and the msgid counter. It is the audit record: a request row
-- is written before anything is sent and never deleted before it is finished.

CREATE TABLE mi_request (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    msgid        TEXT    NOT NULL UNIQUE,      -- the msgid last sent (reversals name it)
    infno        TEXT    NOT NULL,
    mode         TEXT    NOT NULL CHECK (mode IN ('sync', 'async')),
    priority     INTEGER NOT NULL DEFAULT 0,
    state        TEXT    NOT NULL CHECK (state IN ('queued', 'sending', 'retry_wait', 'succeeded',
                                                   'business_error', 'failed', 'uncertain', 'reversed')),
    envelope     TEXT    NOT NULL,             -- the envelope as last sent (or as built, before)
    attempts     INTEGER NOT NULL DEFAULT 0,
    mi_code      INTEGER,                      -- the final MI_* code, once finished
    result       TEXT,                         -- the final output the HIS is given
    last_error   TEXT,
    reversal_of  INTEGER REFERENCES mi_request(id) ON DELETE SET NULL,
    reversed_by  INTEGER REFERENCES mi_request(id) ON DELETE SET NULL,
    owner        TEXT,                         -- the process that claimed it (mi_owner.owner)
    next_at      INTEGER,                      -- retry_wait: not before this Unix time (ms)
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL
);
CREATE INDEX mi_request_state ON mi_request(state, priority DESC, id);
CREATE INDEX mi_request_owner ON mi_request(owner) WHERE owner IS NOT NULL;
CREATE INDEX mi_request_updated ON mi_request(updated_at);

CREATE TABLE mi_attempt (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id   INTEGER NOT NULL REFERENCES mi_request(id) ON DELETE CASCADE,
    attempt_no   INTEGER NOT NULL,
    msgid        TEXT    NOT NULL,
    started_at   TEXT    NOT NULL,
    finished_at  TEXT,
    outcome      TEXT,                         -- ok, business_error, protocol, never_sent, maybe_processed
    http_status  INTEGER,
    infcode      INTEGER,
    err_msg      TEXT,
    response     TEXT,
    latency_ms   INTEGER,
    UNIQUE (request_id, attempt_no)
);

CREATE TABLE mi_signin (
    fixmedins_code TEXT NOT NULL,
    opter          TEXT NOT NULL,
    sign_date      TEXT NOT NULL,              -- local yyyy-MM-dd
    sign_no        TEXT NOT NULL,
    sign_time      TEXT,
    request_id     INTEGER REFERENCES mi_request(id),
    PRIMARY KEY (fixmedins_code, opter, sign_date)
);

-- Processes using this journal. A process refreshes its heartbeat every second;
-- requests claimed by an owner whose heartbeat stopped are recovered by others.
CREATE TABLE mi_owner (
    owner        TEXT PRIMARY KEY,             -- pid + random, new at every mi_init
    pid          INTEGER NOT NULL,
    started_at   TEXT NOT NULL,
    heartbeat_at INTEGER NOT NULL              -- Unix time (ms)
);

CREATE TABLE mi_msgid_seq (
    prefix       TEXT PRIMARY KEY,             -- fixmedins_code + node_id
    second       TEXT NOT NULL,                -- yyyyMMddHHmmss of the last msgid
    counter      INTEGER NOT NULL
);

-- Each request with its final response, for reporting tools.
CREATE VIEW v_mi_result AS
SELECT r.id          AS request_id,
       r.msgid       AS msgid,
       r.infno       AS infno,
       r.state       AS state,
       r.mi_code     AS mi_code,
       r.attempts    AS attempts,
       r.created_at  AS created_at,
       r.updated_at  AS updated_at,
       json_extract(r.result, '$.infcode') AS infcode,
       json_extract(r.result, '$.err_msg') AS err_msg,
       r.result      AS response,
       r.last_error  AS last_error,
       (SELECT a.latency_ms FROM mi_attempt a WHERE a.request_id = r.id
         ORDER BY a.attempt_no DESC LIMIT 1) AS latency_ms
  FROM mi_request r;
