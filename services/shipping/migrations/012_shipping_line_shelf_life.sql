-- R9: a sale's minimum remaining shelf life, per line (the request line's, else the request's;
-- 0 on a vendor return and for documents without one). Kept with the line so that every
-- AllocateLine of it carries it again: a picks update's, a resend's. A process of the version
-- before leaves the column alone, so a line it saves keeps the requirement stored; a line it
-- creates has none, as its requests carried none.
ALTER TABLE shipment_lines ADD COLUMN min_shelf_life_days int NOT NULL DEFAULT 0
    CHECK (min_shelf_life_days BETWEEN 0 AND 3650);
