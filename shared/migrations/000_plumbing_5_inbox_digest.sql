-- What an upstream message_id was processed with: a digest of its document (shared.consumer,
-- `document_digest`). The same id again with the same digest is a redelivery (no effect, as
-- always); with another digest it is another document reusing the id: not applied either, but
-- dead-lettered so it is not lost silently. NULL: an id lotline derived itself (its own topics),
-- or a row written before this column existed (taken as the same document). Nullable without a
-- default: adding it rewrites nothing.
ALTER TABLE inbox ADD COLUMN digest bytea;
