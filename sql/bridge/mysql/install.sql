-- mi_sdk database bridge: install (mysql, prefix mi).
-- Made by `mi-sdk bridge script`; run it with mysql DATABASE < FILE.
-- docs/bridge.md says what each object is for.

CREATE TABLE mi_request (
  id BIGINT NOT NULL AUTO_INCREMENT,
  infno VARCHAR(10) NOT NULL,
  input_json LONGTEXT NOT NULL,
  priority INT DEFAULT 0 NOT NULL,
  state VARCHAR(16) DEFAULT 'new' NOT NULL,
  created_at DATETIME(3) DEFAULT CURRENT_TIMESTAMP(3) NOT NULL,
  claimed_at DATETIME(3) NULL,
  finished_at DATETIME(3) NULL,
  node VARCHAR(100) NULL,
  journal_id VARCHAR(64) NULL,
  lease_until DATETIME(3) NULL,
  mi_code INT NULL,
  output_json LONGTEXT NULL,
  err_msg VARCHAR(2000) NULL,
  journal_request_id BIGINT NULL,
  msgid VARCHAR(40) NULL,
  CONSTRAINT mi_request_pk PRIMARY KEY (id),
  CONSTRAINT mi_request_state CHECK (state IN ('new', 'sending', 'succeeded', 'business_error', 'failed', 'uncertain', 'reversed'))
) ENGINE=InnoDB;

CREATE INDEX mi_request_todo ON mi_request (state, priority DESC, id);

CREATE INDEX mi_request_done ON mi_request (finished_at);

CREATE TABLE mi_meta (meta_key VARCHAR(40) NOT NULL PRIMARY KEY, meta_value VARCHAR(200) NOT NULL) ENGINE=InnoDB;

INSERT INTO mi_meta (meta_key, meta_value) VALUES ('database_id', REPLACE(UUID(), '-', ''));

INSERT INTO mi_meta (meta_key, meta_value) VALUES ('schema_version', '1');

CREATE VIEW v_mi_result AS SELECT id AS request_id, infno, priority, state, mi_code, output_json, err_msg, msgid, journal_request_id, node, created_at, claimed_at, finished_at FROM mi_request;

DELIMITER //
CREATE PROCEDURE sp_mi_call(IN p_infno VARCHAR(10), IN p_input LONGTEXT, IN p_priority INT, OUT p_request_id BIGINT)
BEGIN
  INSERT INTO mi_request (infno, input_json, priority) VALUES (p_infno, p_input, COALESCE(p_priority, 0));
  SET p_request_id = LAST_INSERT_ID();
END //
DELIMITER ;

DELIMITER //
CREATE PROCEDURE sp_mi_call_wait(IN p_infno VARCHAR(10), IN p_input LONGTEXT, IN p_priority INT, IN p_timeout_s INT,
  OUT p_request_id BIGINT, OUT p_state VARCHAR(16), OUT p_mi_code INT, OUT p_output LONGTEXT, OUT p_err_msg VARCHAR(2000))
BEGIN
  DECLARE v_deadline DATETIME(3) DEFAULT SYSDATE(3) + INTERVAL COALESCE(p_timeout_s, 30) SECOND;
  INSERT INTO mi_request (infno, input_json, priority) VALUES (p_infno, p_input, COALESCE(p_priority, 0));
  SET p_request_id = LAST_INSERT_ID();
  COMMIT;
  w: LOOP
    SELECT state, mi_code, output_json, err_msg INTO p_state, p_mi_code, p_output, p_err_msg
      FROM mi_request WHERE id = p_request_id;
    COMMIT;
    IF p_state IN ('succeeded', 'business_error', 'failed', 'uncertain', 'reversed') OR SYSDATE(3) >= v_deadline THEN LEAVE w; END IF;
    DO SLEEP(0.02);
  END LOOP;
END //
DELIMITER ;
