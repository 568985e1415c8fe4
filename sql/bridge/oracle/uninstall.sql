-- mi_sdk database bridge: uninstall (oracle, prefix mi).
-- Made by `mi-sdk bridge script`; run it with SQL*Plus: @FILE.
-- docs/bridge.md says what each object is for.

DROP PROCEDURE sp_mi_call_wait;

DROP PROCEDURE sp_mi_call;

DROP VIEW v_mi_result;

DROP TABLE mi_meta;

DROP TABLE mi_request;
