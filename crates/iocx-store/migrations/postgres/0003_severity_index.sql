-- Rules almost always bound severity (`severity >= high`): with this index a preview or a share
-- of such a rule reads the matching part of the store instead of all of it. Severity changes
-- rarely on a re-sighting, and new rows land at the end of one of five ranges, so ingest pays
-- little for it (see BENCHMARKS.md).
CREATE INDEX indicator_severity ON indicator (severity);
