-- 0002: indexes for the /v2 door: referrers by subject, and images by repository for the
-- tag and catalog listings (names are already covered by the primary keys).
CREATE INDEX images_by_subject ON images (repo_id, subject) WHERE subject IS NOT NULL;
