-- A sign-in named its 9001 request with no ON DELETE action, so retention could not
-- delete that request once it was older than `retain_days`: the purge failed as a
-- whole and the journal grew forever. The link is only the audit trail of where a
-- sign_no came from; the sign-in itself (today's sign_no) must outlive its request,
-- so deleting the request clears the link (SET NULL) and never the sign-in.
-- SQLite cannot alter a foreign key: the table is rebuilt, its rows copied.
CREATE TABLE mi_signin_new (
    fixmedins_code TEXT NOT NULL,
    opter          TEXT NOT NULL,
    sign_date      TEXT NOT NULL,              -- local yyyy-MM-dd
    sign_no        TEXT NOT NULL,
    sign_time      TEXT,
    request_id     INTEGER REFERENCES mi_request(id) ON DELETE SET NULL,
    PRIMARY KEY (fixmedins_code, opter, sign_date)
);
INSERT INTO mi_signin_new(fixmedins_code, opter, sign_date, sign_no, sign_time, request_id)
SELECT fixmedins_code, opter, sign_date, sign_no, sign_time, request_id FROM mi_signin;
DROP TABLE mi_signin;
ALTER TABLE mi_signin_new RENAME TO mi_signin;
CREATE INDEX mi_signin_request ON mi_signin(request_id);
