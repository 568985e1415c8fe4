-- Facts about the journal itself, one row each. `node_id`: the msgid node of a
-- workstation whose config names none, chosen at random the first time the journal
-- is opened and kept here, so that workstations sharing one config (and one
-- institution code) do not all send the same msgids.
CREATE TABLE mi_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
