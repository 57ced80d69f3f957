-- The shared agent token is gone: each host authenticates with its own token (hosts.token_hash),
-- issued when the operator enrols it. Nothing reads this table any more, and a secret nobody
-- uses should not stay in the database.
DROP TABLE IF EXISTS agent_token;
