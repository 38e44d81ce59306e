-- When each held receipt line was held: its stock is unusable until receiving confirms or
-- cancels it, normally within a round trip. The oldest one's age is allocation's
-- lotline_oldest_waiting_document_seconds: minutes mean a document stuck half-decided.
ALTER TABLE held_lines ADD COLUMN held_at timestamptz NOT NULL DEFAULT now();
