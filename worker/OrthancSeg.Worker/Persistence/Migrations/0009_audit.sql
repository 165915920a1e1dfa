-- The audit log (issue 11): every gRPC call that changes something, with who made it and how it ended. A row is written
-- before the call runs (so no change happens unrecorded: if the row cannot be written, the call is refused) and completed
-- when it ends. Calls refused for their token's role are recorded too, in one row.

CREATE TABLE audit_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- When the call arrived.
    time            timestamptz NOT NULL DEFAULT now(),
    -- The configured name of the token the call carried ("admin", "bridge", or a key of OrthancSeg:Auth:Tokens) and its role.
    token_name      text NOT NULL,
    role            text NOT NULL CHECK (role IN ('bridge', 'viewer', 'operator', 'admin')),
    -- "/orthancseg.v1.Service/Method".
    method          text NOT NULL,
    -- The identifying fields of the request, e.g. 'workflow.name=liver-ct'; empty when it names none.
    resource        text NOT NULL DEFAULT '',
    -- The peer address the call came from.
    peer            text NOT NULL DEFAULT '',
    -- How it ended: a gRPC status code name ('OK', 'NOT_FOUND', ...) and, when not OK, its message. NULL while in flight, or
    -- for ever when the worker stopped before it could record the end.
    status_code     text,
    status_message  text,
    end_time        timestamptz
);

CREATE INDEX audit_log_token_name ON audit_log (token_name, id);
CREATE INDEX audit_log_time ON audit_log (time);
