-- The transfer figures of an export: how many DICOM instances it fetched from Orthanc and for how long a fetch was in
-- flight (wall time, parallel fetches counted once), beside bytes_read; bytes_read / fetch_ms is the link's throughput.
-- Progress while running, final figures of the successful attempt afterwards. Snapshots recorded before this have 0.
ALTER TABLE snapshots
    ADD COLUMN instances_read bigint NOT NULL DEFAULT 0,
    ADD COLUMN fetch_ms       bigint NOT NULL DEFAULT 0;
