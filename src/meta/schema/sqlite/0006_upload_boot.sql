-- 0006: upload parts are acknowledged before their bytes are fsync'd (the blob is fsync'd
-- before it is committed). unsynced_boot is the kernel boot id of the last write whose bytes
-- may still be in the page cache only; NULL once durable. A session whose boot id is not the
-- running kernel's may have lost bytes in a crash and is dropped (the client starts over).
ALTER TABLE uploads ADD COLUMN unsynced_boot TEXT;
