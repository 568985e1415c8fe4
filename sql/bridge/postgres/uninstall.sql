-- mi_sdk database bridge: uninstall (postgres, prefix mi).
-- Made by `mi-sdk bridge script`; run it with psql -v ON_ERROR_STOP=1 -f FILE.
-- docs/bridge.md says what each object is for.

DROP PROCEDURE IF EXISTS sp_mi_call_wait;

DROP PROCEDURE IF EXISTS sp_mi_call;

DROP VIEW IF EXISTS v_mi_result;

DROP TABLE IF EXISTS mi_meta;

DROP TABLE IF EXISTS mi_request;
