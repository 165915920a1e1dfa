-- Plain-named views for people browsing the records with Adminer, pgAdmin or psql (docs/operations.md, "Browsing the
-- database"), in their own schema because the tables already carry the plain names. Each shows one overview view of
-- public; a migration that changes one of those must recreate its view here too (PostgreSQL refuses to drop it first).
CREATE SCHEMA browse;

CREATE VIEW browse.workflows AS SELECT * FROM public.workflow_overview;
CREATE VIEW browse.cases AS SELECT * FROM public.case_overview;
CREATE VIEW browse.labels AS SELECT * FROM public.label_overview;
CREATE VIEW browse.snapshots AS SELECT * FROM public.snapshot_overview;
CREATE VIEW browse.training_runs AS SELECT * FROM public.training_overview;
CREATE VIEW browse.models AS SELECT * FROM public.model_overview;

COMMENT ON SCHEMA browse IS 'Read-only views of the OrthancSeg records for people: workflows, cases, labels, snapshots, training_runs, models.';

-- The roles belong to the cluster, which the stack (orthanc-config/stack.sh) provisions: the NOLOGIN group role
-- orthancseg_reader, whose member orthancseg_browser is the login for people. Where it exists it may read these
-- views, and nothing else of this database (no table, no sequence): a view reads its tables with its owner's rights.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orthancseg_reader') THEN
        GRANT USAGE ON SCHEMA browse TO orthancseg_reader;
        GRANT SELECT ON ALL TABLES IN SCHEMA browse TO orthancseg_reader;
        ALTER DEFAULT PRIVILEGES IN SCHEMA browse GRANT SELECT ON TABLES TO orthancseg_reader;
    END IF;
END
$$;
