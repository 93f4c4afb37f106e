"""The team-mode database schema, as numbered migrations.

`coordinator state init` / `state migrate` apply them in order, as the schema's owner,
each in its own transaction, and record the version in `coordinator.schema_version`. At
every other use the coordinator refuses a schema older or newer than `SCHEMA_VERSION`.

Version 1 made history append-only (SELECT and INSERT for the application role, never
UPDATE, DELETE or TRUNCATE; release records are revisions) and the audit chain unforkable
(unique prev_hash). Version 2 (`schema_v2`) takes INSERT away too: the application role
writes only through owner-defined functions that decide identity, time, the approver rules,
the artifact and the audit hash themselves.
"""

from __future__ import annotations

from collections.abc import Callable

from coordinator.audit import AuditEvent
from coordinator.state.schema_v2 import v2

SCHEMA = "coordinator"


def _v1(app_role: str) -> list[str]:
    return [
        f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
        f"""CREATE TABLE {SCHEMA}.release_revisions (
            release_id text NOT NULL,
            rev integer NOT NULL CHECK (rev >= 1),
            project text NOT NULL,
            body jsonb NOT NULL,
            saved_at timestamptz NOT NULL DEFAULT now(),
            saved_by name NOT NULL DEFAULT current_user,
            PRIMARY KEY (release_id, rev))""",
        f"""CREATE TABLE {SCHEMA}.approvals (
            id bigserial PRIMARY KEY,
            release_id text NOT NULL,
            identity text NOT NULL CHECK (identity <> ''),
            verified_by text NOT NULL CHECK (verified_by IN ('forge', 'database', 'local')),
            db_role name NOT NULL DEFAULT current_user,
            label text,
            tag text NOT NULL,
            commit_sha text NOT NULL,
            run_id text NOT NULL,
            digest text NOT NULL,
            smoke text NOT NULL,
            reason text,
            confirmed_at timestamptz NOT NULL,
            UNIQUE (release_id, identity, tag, commit_sha, run_id, digest, smoke))""",
        f"""CREATE TABLE {SCHEMA}.audit_records (
            seq bigint PRIMARY KEY CHECK (seq >= 1),
            hash text NOT NULL UNIQUE,
            prev_hash text UNIQUE,
            line text NOT NULL,
            written_by name NOT NULL DEFAULT current_user,
            written_at timestamptz NOT NULL DEFAULT now())""",
        # Runs as the inserting role (not SECURITY DEFINER), so current_user is who inserts.
        f"""CREATE FUNCTION {SCHEMA}.approval_names_inserter() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.db_role IS DISTINCT FROM current_user THEN
                RAISE EXCEPTION 'approval names database role %, but % inserted it', NEW.db_role, current_user
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF NEW.verified_by = 'database' AND NEW.identity IS DISTINCT FROM current_user::text THEN
                RAISE EXCEPTION 'database-verified approval names %, but % inserted it', NEW.identity, current_user
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN NEW;
        END $$""",
        f"""CREATE TRIGGER approval_names_inserter BEFORE INSERT ON {SCHEMA}.approvals
            FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.approval_names_inserter()""",
        f"""CREATE FUNCTION {SCHEMA}.audit_links_to_head() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE head record;
        BEGIN
            SELECT seq, hash INTO head FROM {SCHEMA}.audit_records ORDER BY seq DESC LIMIT 1;
            IF NEW.seq IS DISTINCT FROM COALESCE(head.seq, 0) + 1 OR NEW.prev_hash IS DISTINCT FROM head.hash THEN
                RAISE EXCEPTION 'audit record % does not link to the chain head (seq %)', NEW.seq, COALESCE(head.seq, 0)
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            NEW.written_by := current_user;
            RETURN NEW;
        END $$""",
        f"""CREATE TRIGGER audit_links_to_head BEFORE INSERT ON {SCHEMA}.audit_records
            FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.audit_links_to_head()""",
        f"""CREATE FUNCTION {SCHEMA}.revision_names_inserter() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN NEW.saved_by := current_user; RETURN NEW; END $$""",
        f"""CREATE TRIGGER revision_names_inserter BEFORE INSERT ON {SCHEMA}.release_revisions
            FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.revision_names_inserter()""",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {SCHEMA} FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA {SCHEMA} TO {app_role}",
        f"GRANT SELECT ON {SCHEMA}.schema_version TO {app_role}",
        f"GRANT SELECT, INSERT ON {SCHEMA}.release_revisions, {SCHEMA}.approvals, {SCHEMA}.audit_records TO {app_role}",
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {SCHEMA}.release_revisions, {SCHEMA}.approvals, {SCHEMA}.audit_records "
        f"FROM {app_role}",
        f"GRANT USAGE ON SEQUENCE {SCHEMA}.approvals_id_seq TO {app_role}",
    ]


def _v2(app_role: str) -> list[str]:
    return v2(app_role, SCHEMA, [event.value for event in AuditEvent])


MIGRATIONS: list[Callable[[str], list[str]]] = [_v1, _v2]
"""Index i holds the statements that take the schema from version i to i + 1."""

SCHEMA_VERSION = len(MIGRATIONS)

VERSION_TABLE = f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_version (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by name NOT NULL DEFAULT current_user)"""
