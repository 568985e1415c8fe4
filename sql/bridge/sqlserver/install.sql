-- mi_sdk database bridge: install (sqlserver, prefix mi).
-- Made by `mi-sdk bridge script`; run it with sqlcmd -b -i FILE, or SQL Server Management Studio.
-- docs/bridge.md says what each object is for.

CREATE TABLE mi_request (
  id BIGINT IDENTITY(1,1) NOT NULL,
  infno VARCHAR(10) NOT NULL,
  input_json NVARCHAR(MAX) NOT NULL,
  priority INT DEFAULT 0 NOT NULL,
  state VARCHAR(16) DEFAULT 'new' NOT NULL,
  created_at DATETIME2(3) DEFAULT SYSDATETIME() NOT NULL,
  claimed_at DATETIME2(3) NULL,
  finished_at DATETIME2(3) NULL,
  node NVARCHAR(100) NULL,
  journal_id VARCHAR(64) NULL,
  lease_until DATETIME2(3) NULL,
  mi_code INT NULL,
  output_json NVARCHAR(MAX) NULL,
  err_msg NVARCHAR(2000) NULL,
  journal_request_id BIGINT NULL,
  msgid VARCHAR(40) NULL,
  CONSTRAINT mi_request_pk PRIMARY KEY (id),
  CONSTRAINT mi_request_state CHECK (state IN ('new', 'sending', 'succeeded', 'business_error', 'failed', 'uncertain', 'reversed'))
)
GO

CREATE INDEX mi_request_todo ON mi_request (state, priority DESC, id)
GO

CREATE INDEX mi_request_done ON mi_request (finished_at)
GO

CREATE TABLE mi_meta (meta_key VARCHAR(40) NOT NULL PRIMARY KEY, meta_value VARCHAR(200) NOT NULL)
GO

INSERT INTO mi_meta (meta_key, meta_value) VALUES ('database_id', LOWER(REPLACE(CONVERT(VARCHAR(36), NEWID()), '-', '')))
GO

INSERT INTO mi_meta (meta_key, meta_value) VALUES ('schema_version', '1')
GO

CREATE VIEW v_mi_result AS SELECT id AS request_id, infno, priority, state, mi_code, output_json, err_msg, msgid, journal_request_id, node, created_at, claimed_at, finished_at FROM mi_request
GO

CREATE PROCEDURE sp_mi_call @p_infno VARCHAR(10), @p_input NVARCHAR(MAX), @p_priority INT = 0, @p_request_id BIGINT OUTPUT
AS
BEGIN
  SET NOCOUNT ON;
  INSERT INTO mi_request (infno, input_json, priority) VALUES (@p_infno, @p_input, ISNULL(@p_priority, 0));
  SET @p_request_id = SCOPE_IDENTITY();
END
GO

CREATE PROCEDURE sp_mi_call_wait @p_infno VARCHAR(10), @p_input NVARCHAR(MAX), @p_priority INT = 0, @p_timeout_s INT = 30,
  @p_request_id BIGINT OUTPUT, @p_state VARCHAR(16) OUTPUT, @p_mi_code INT OUTPUT,
  @p_output NVARCHAR(MAX) OUTPUT, @p_err_msg NVARCHAR(2000) OUTPUT
AS
BEGIN
  SET NOCOUNT ON;
  -- A caller in manual-commit mode (IMPLICIT_TRANSACTIONS ON) would open a
  -- transaction with the INSERT that the bridge cannot see; reverts on return.
  SET IMPLICIT_TRANSACTIONS OFF;
  IF @@TRANCOUNT > 0
  BEGIN
    RAISERROR('sp_mi_call_wait must be called outside a transaction: the bridge sees a request only once it is committed', 16, 1);
    RETURN;
  END;
  DECLARE @deadline DATETIME2(3) = DATEADD(SECOND, ISNULL(@p_timeout_s, 30), SYSDATETIME());
  INSERT INTO mi_request (infno, input_json, priority) VALUES (@p_infno, @p_input, ISNULL(@p_priority, 0));
  SET @p_request_id = SCOPE_IDENTITY();
  WHILE 1 = 1
  BEGIN
    SELECT @p_state = state, @p_mi_code = mi_code, @p_output = output_json, @p_err_msg = err_msg
      FROM mi_request WHERE id = @p_request_id;
    IF @p_state IN ('succeeded', 'business_error', 'failed', 'uncertain', 'reversed') OR SYSDATETIME() >= @deadline BREAK;
    WAITFOR DELAY '00:00:00.020';
  END;
END
GO
