-- Alibaba signature nonces, in a file of their own beside the database (`<database>-nonces`):
-- every signed Alibaba request writes one, and in WAL mode a write to a file makes every other
-- connection to that file drop its page cache at its next read. Kept apart, the nonces' writes
-- leave the cached pages of the resources the requests read alone.
CREATE TABLE aliyun_nonces (
    access_key TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (access_key, nonce)
);
CREATE INDEX aliyun_nonces_expiry ON aliyun_nonces (expires_at);
