-- 0005: tag attachment order comes from one registry-wide sequence (only the order of one
-- image's tags matters), found through this index instead of scanning a repository's tags.
CREATE INDEX tags_by_seq ON tags (seq);
