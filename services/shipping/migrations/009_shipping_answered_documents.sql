-- Every status on inventory.status lists, in `answers`, the message ids of the upstream
-- documents it answers. One status may answer several: `unanswered` holds the documents
-- applied since the shipment's last status and not answered yet, which the status the phase
-- under way settles on answers (a JSON array of message ids, in the order applied).
-- `waiting_documents` pairs each status id of `waiting` with the document it is owed to (a
-- JSON array of [status id, message id]). Rows written before (or by a process of the version
-- before) hold none: their next status answers only what is applied from now on.
ALTER TABLE shipments ADD COLUMN unanswered jsonb NOT NULL DEFAULT '[]';
ALTER TABLE shipments ADD COLUMN waiting_documents jsonb NOT NULL DEFAULT '[]';
