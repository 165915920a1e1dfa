-- A snapshot records its dataset.json as written: the json type keeps the text byte for byte (jsonb
-- reorders keys, which put "background" after the labels and broke the link to dataset_json_sha256).
-- Snapshots recorded before this migration keep jsonb's key order.
ALTER TABLE snapshots ALTER COLUMN dataset_json TYPE json USING dataset_json::json;
