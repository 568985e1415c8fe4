-- mi_sdk database bridge: uninstall (sqlserver, prefix mi).
-- Made by `mi-sdk bridge script`; run it with sqlcmd -b -i FILE, or SQL Server Management Studio.
-- docs/bridge.md says what each object is for.

DROP PROCEDURE IF EXISTS sp_mi_call_wait
GO

DROP PROCEDURE IF EXISTS sp_mi_call
GO

DROP VIEW IF EXISTS v_mi_result
GO

DROP TABLE IF EXISTS mi_meta
GO

DROP TABLE IF EXISTS mi_request
GO
