-- Sealing (docs/operations.md, "The journal sealed at rest"): envelopes, results, error texts and
-- attempts' responses may now be sealed text (`mi1.…`), unreadable without the
-- journal's key. What the day's books sum of a settlement is kept beside them in
-- clear: the envelope's and the answer's settlement fields only (JSON of the same
-- shape, no names, ID numbers or diagnoses).
ALTER TABLE mi_request ADD COLUMN books_envelope TEXT;
ALTER TABLE mi_request ADD COLUMN books_result TEXT;

-- The view for reporting tools shows what is in clear. A sealed answer or error
-- text shows as NULL (full answers come through the C ABI or `mi-sdk show`); the
-- platform's infcode of a sealed answer is its last attempt's.
DROP VIEW v_mi_result;
CREATE VIEW v_mi_result AS
SELECT r.id          AS request_id,
       r.msgid       AS msgid,
       r.infno       AS infno,
       r.state       AS state,
       r.mi_code     AS mi_code,
       r.attempts    AS attempts,
       r.created_at  AS created_at,
       r.updated_at  AS updated_at,
       CASE WHEN json_valid(r.result) THEN json_extract(r.result, '$.infcode')
            ELSE (SELECT a.infcode FROM mi_attempt a WHERE a.request_id = r.id
                   ORDER BY a.attempt_no DESC LIMIT 1) END AS infcode,
       CASE WHEN json_valid(r.result) THEN json_extract(r.result, '$.err_msg') END AS err_msg,
       CASE WHEN json_valid(r.result) THEN r.result END AS response,
       CASE WHEN r.last_error NOT LIKE 'mi1.%' THEN r.last_error END AS last_error,
       (SELECT a.latency_ms FROM mi_attempt a WHERE a.request_id = r.id
         ORDER BY a.attempt_no DESC LIMIT 1) AS latency_ms
  FROM mi_request r;
