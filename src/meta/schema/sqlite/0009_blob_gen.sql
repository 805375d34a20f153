-- 0009: blob files are named by generation (src/core/gc.c has the safety argument). A blob's
-- bytes live in the file of (digest, gen): gen is the id of the upload that wrote them, or ''
-- for files written before generations (named by the digest alone). A (digest, gen) file is
-- written once and deleted once, so a deletion can never take bytes a new upload put there.
ALTER TABLE blobs ADD COLUMN gen TEXT NOT NULL DEFAULT '';

-- Files that nothing may use any more and that are being (or are to be) deleted: a blob gc
-- freed, a duplicate upload of bytes already stored, an orphan. A file is unlinked only while
-- its row is here, and a row is added only for a file that no blob row names; so a blob row
-- and a trash row never name the same file, and a file a blob row names is never unlinked.
CREATE TABLE blob_trash (
	digest TEXT NOT NULL,
	gen TEXT NOT NULL,
	at INTEGER NOT NULL,
	PRIMARY KEY (digest, gen)
);
