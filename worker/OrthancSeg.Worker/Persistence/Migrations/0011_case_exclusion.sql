-- A person can take a case out of training (CaseService.ExcludeCase, issue 11) with a reason, and put it back (IncludeCase).
-- The case keeps its current state: who (the token's configured name), when and why. Putting it back clears the three;
-- case_exclusion_history keeps every change with its reason (the audit log has the calls, but not their reasons).
ALTER TABLE cases
    ADD COLUMN excluded_at      timestamptz,
    ADD COLUMN excluded_by      text,
    ADD COLUMN exclusion_reason text,
    ADD CONSTRAINT cases_exclusion_whole CHECK (
        (excluded_at IS NULL AND excluded_by IS NULL AND exclusion_reason IS NULL)
        OR (excluded_at IS NOT NULL AND excluded_by IS NOT NULL AND exclusion_reason IS NOT NULL));

-- One row per change of a case's exclusion, written in the statement that makes it (a repeated call that changes nothing
-- writes none).
CREATE TABLE case_exclusion_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id     bigint NOT NULL REFERENCES cases (id),
    action      text NOT NULL CHECK (action IN ('excluded', 'included')),
    token_name  text NOT NULL,
    -- The exclusion's reason; NULL for an inclusion.
    reason      text CHECK ((action = 'excluded') = (reason IS NOT NULL)),
    time        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX case_exclusion_history_case ON case_exclusion_history (case_id, id);

-- ListCases filters on it; the excluded cases are few.
CREATE INDEX cases_excluded ON cases (id DESC) WHERE excluded_at IS NOT NULL;

-- The overview gains the three columns (at the end, so CREATE OR REPLACE keeps the view and its grants), and so does
-- browse.cases, whose SELECT * was expanded to case_overview's columns when 0010 created it.
CREATE OR REPLACE VIEW case_overview AS
SELECT c.case_key,
       w.name AS workflow,
       c.status,
       c.status_reason,
       c.modality,
       c.series_description,
       c.instance_count,
       c.series_instance_uid,
       c.orthanc_series_id,
       (SELECT count(*) FROM labels l WHERE l.case_id = c.id) AS label_count,
       (SELECT l.sop_instance_uid FROM labels l WHERE l.case_id = c.id AND l.is_current) AS current_label,
       c.created_at,
       c.updated_at,
       c.excluded_at,
       c.excluded_by,
       c.exclusion_reason
FROM cases c
JOIN workflows w ON w.id = c.workflow_id;

CREATE OR REPLACE VIEW browse.cases AS SELECT * FROM public.case_overview;
