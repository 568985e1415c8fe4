-- Where a request came from outside the C ABI (the drop-box service's file), so the
-- same file is never submitted twice, even after a crash between commit and rename.
ALTER TABLE mi_request ADD COLUMN source TEXT;
CREATE UNIQUE INDEX mi_request_source ON mi_request(source) WHERE source IS NOT NULL;
