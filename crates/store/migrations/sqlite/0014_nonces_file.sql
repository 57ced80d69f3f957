-- The nonces moved to their own file (`<database>-nonces`, see migrations/sqlite-nonces): the
-- store copies the rows still here into it before this migration runs.
DROP TABLE aliyun_nonces;
