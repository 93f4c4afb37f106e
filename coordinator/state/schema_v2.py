"""Schema version 2: the database decides the gate, not the client.

Version 1 let every application role INSERT into the history tables and trusted what it
wrote (an approval's identity and time, a release's artifact, an audit record's hash).
Version 2 takes INSERT away: application roles keep SELECT, and write only through the
functions below, owned by the schema owner (SECURITY DEFINER, `search_path` fixed with
`pg_temp` last, EXECUTE revoked from PUBLIC and granted to the application role). They
decide what a client must not:

- who acts: `session_user`, the login. A session that switched role (`SET ROLE`, a DSN's
  `options=-crole=...`, both visible as the `role` setting even inside these functions)
  or that is not a LOGIN role is refused for every write;
- an approval's identity (the login), its time (`now()`), whether that login may approve
  (the gate policy row, set by the owner with `coordinator state policy`), and whether it
  names the release's artifact;
- a release's artifact (tag, commit, CI run, digest) and releaser: written once, by the
  first revision that names them; a later revision that changes one is refused. The login
  that saved the first revision is kept as `started_by`; self-approval is refused against
  it as well as against the recorded releaser, so naming another releaser gains nothing;
- an audit record: the server hashes the line itself (sha256 of its exact bytes), checks
  that the line's seq and prev_hash link to the head and that its `writer` is the login,
  and refuses a record that is not one `coordinator audit verify` accepts.

Refusals use two SQLSTATEs of our own so clients can tell them apart: CO001 (this login
may not do this: identity, role switch, approver rules) and CO002 (the write contradicts
the record: artifact, write-once fields, chain).
"""

from __future__ import annotations

DEFINER = "LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, coordinator, pg_temp"

IDENTITY_STATE = "CO001"
RECORD_STATE = "CO002"

AUDIT_KEYS = ("seq", "ts", "event", "operator", "release_id", "version", "environment", "outcome", "data",
              "prev_hash", "writer")
AUDIT_CLOCK_SKEW = "10 minutes"
CHAIN_LOCK = "coordinator:audit-chain"


def _acting_login(schema: str) -> str:
    # Not SECURITY DEFINER itself: it runs inside the definer functions, where current_user
    # is the owner; the `role` setting still shows a role switch made by the session.
    return f"""CREATE FUNCTION {schema}.acting_login() RETURNS name LANGUAGE plpgsql STABLE
        SET search_path = pg_catalog, pg_temp AS $$
    DECLARE switched text := current_setting('role');
    BEGIN
        IF switched IS DISTINCT FROM 'none' THEN
            RAISE EXCEPTION 'session of % switched to role %: connect as your own login, without SET ROLE or options=-crole',
                session_user, switched USING ERRCODE = '{IDENTITY_STATE}';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = session_user AND rolcanlogin) THEN
            RAISE EXCEPTION 'role % is not a login role: each person and job writes as their own login', session_user
                USING ERRCODE = '{IDENTITY_STATE}';
        END IF;
        RETURN session_user;
    END $$"""


def _save_release(schema: str) -> str:
    return f"""CREATE FUNCTION {schema}.save_release(p_body jsonb) RETURNS integer {DEFINER} AS $$
    DECLARE
        who name := {schema}.acting_login();
        known {schema}.releases%ROWTYPE;
        rid text := p_body->>'id';
        v_releaser text := lower(COALESCE(p_body->>'releaser', session_user));
        v_tag text := p_body->>'tag';
        v_commit text := p_body->>'commit_sha';
        v_run text := p_body->'build'->>'run_id';
        v_digest text := p_body->'build'->>'digest';
        next_rev integer;
    BEGIN
        IF rid IS NULL OR p_body->>'project' IS NULL OR v_tag IS NULL THEN
            RAISE EXCEPTION 'a release record needs id, project and tag' USING ERRCODE = '{RECORD_STATE}';
        END IF;
        PERFORM pg_advisory_xact_lock(hashtextextended('coordinator-release:' || rid, 0));
        SELECT * INTO known FROM {schema}.releases WHERE release_id = rid;
        IF NOT FOUND THEN
            INSERT INTO {schema}.releases (release_id, project, started_by, releaser, tag, commit_sha, run_id, digest)
                VALUES (rid, p_body->>'project', who, v_releaser, v_tag, v_commit, v_run, v_digest);
        ELSE
            IF known.project IS DISTINCT FROM p_body->>'project' OR known.releaser IS DISTINCT FROM v_releaser
               OR known.tag IS DISTINCT FROM v_tag
               OR (known.commit_sha IS NOT NULL AND known.commit_sha IS DISTINCT FROM v_commit)
               OR (known.run_id IS NOT NULL AND known.run_id IS DISTINCT FROM v_run)
               OR (known.digest IS NOT NULL AND known.digest IS DISTINCT FROM v_digest) THEN
                RAISE EXCEPTION 'release % was started by % (releaser %) for % at commit %, run %, digest %: '
                    'its artifact and releaser are written once; release a new version instead',
                    rid, known.started_by, known.releaser, known.tag, COALESCE(known.commit_sha, '-'),
                    COALESCE(known.run_id, '-'), COALESCE(known.digest, '-') USING ERRCODE = '{RECORD_STATE}';
            END IF;
            UPDATE {schema}.releases SET commit_sha = v_commit, run_id = v_run, digest = v_digest
                WHERE release_id = rid AND (commit_sha IS NULL OR run_id IS NULL OR digest IS NULL);
        END IF;
        SELECT COALESCE(max(rev), 0) + 1 INTO next_rev FROM {schema}.release_revisions WHERE release_id = rid;
        INSERT INTO {schema}.release_revisions (release_id, rev, project, body, saved_by)
            VALUES (rid, next_rev, p_body->>'project', p_body, who);
        RETURN next_rev;
    END $$"""


def _record_approval(schema: str) -> str:
    return f"""CREATE FUNCTION {schema}.record_approval(p_release_id text, p_identity text, p_verified_by text,
            p_label text, p_tag text, p_commit text, p_run text, p_digest text, p_smoke text, p_reason text)
        RETURNS timestamptz {DEFINER} AS $$
    DECLARE
        who name := {schema}.acting_login();
        policy {schema}.gate_policy%ROWTYPE;
        rel {schema}.releases%ROWTYPE;
        smoke text;
        approver text;
        allowed boolean := false;
        stamp timestamptz := now();
    BEGIN
        SELECT * INTO policy FROM {schema}.gate_policy;
        SELECT * INTO rel FROM {schema}.releases WHERE release_id = p_release_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no release % in the database' , p_release_id USING ERRCODE = '{RECORD_STATE}';
        END IF;
        IF COALESCE(p_verified_by, '') NOT IN ('database', 'forge') OR lower(p_identity) IS DISTINCT FROM lower(who) THEN
            RAISE EXCEPTION 'approval names % (%), but the login is %: each person approves with their own login',
                p_identity, p_verified_by, who USING ERRCODE = '{IDENTITY_STATE}';
        END IF;
        IF lower(who) = ANY (policy.bots) THEN
            RAISE EXCEPTION '% is a bot account (state policy --bots): bots never approve', who
                USING ERRCODE = '{IDENTITY_STATE}';
        END IF;
        IF cardinality(policy.approvers) > 0 THEN
            FOREACH approver IN ARRAY policy.approvers LOOP
                allowed := allowed OR lower(who) = approver OR EXISTS (
                    SELECT 1 FROM pg_roles r WHERE r.rolname = approver AND pg_has_role(who, r.oid, 'MEMBER'));
            END LOOP;
            IF NOT allowed THEN
                RAISE EXCEPTION '% may not approve: the gate policy allows %', who, array_to_string(policy.approvers, ', ')
                    USING ERRCODE = '{IDENTITY_STATE}';
            END IF;
        END IF;
        IF policy.forbid_self_approval AND (lower(who) = lower(rel.started_by) OR lower(who) = rel.releaser) THEN
            RAISE EXCEPTION '% started release % and self-approval is forbidden: ask another approver', who, p_release_id
                USING ERRCODE = '{IDENTITY_STATE}';
        END IF;
        SELECT body->>'smoke_result' INTO smoke FROM {schema}.release_revisions
            WHERE release_id = p_release_id ORDER BY rev DESC LIMIT 1;
        IF rel.digest IS NULL OR smoke IS DISTINCT FROM 'passed' OR p_smoke IS DISTINCT FROM smoke
           OR p_tag IS DISTINCT FROM rel.tag OR p_commit IS DISTINCT FROM rel.commit_sha
           OR p_run IS DISTINCT FROM rel.run_id OR p_digest IS DISTINCT FROM rel.digest THEN
            RAISE EXCEPTION 'approval of % names % at %, but the release''s artifact is % at % (run %, commit %, smoke %)',
                p_release_id, p_tag, p_digest, rel.tag, COALESCE(rel.digest, 'none yet'), COALESCE(rel.run_id, '-'),
                COALESCE(rel.commit_sha, '-'), COALESCE(smoke, '-') USING ERRCODE = '{RECORD_STATE}';
        END IF;
        INSERT INTO {schema}.approvals (release_id, identity, verified_by, db_role, label, tag, commit_sha, run_id,
                digest, smoke, reason, confirmed_at, checked)
            VALUES (p_release_id, who, p_verified_by, who, p_label, p_tag, p_commit, p_run, p_digest, p_smoke,
                    p_reason, stamp, true);
        RETURN stamp;
    END $$"""


def _append_audit(schema: str, events: list[str]) -> str:
    allowed_events = ", ".join(f"'{event}'" for event in events)
    allowed_keys = ", ".join(f"'{key}'" for key in AUDIT_KEYS)
    return f"""CREATE FUNCTION {schema}.append_audit(p_line text) RETURNS text {DEFINER} AS $$
    DECLARE
        who name := {schema}.acting_login();
        rec jsonb;
        head record;
        digest text := encode(sha256(convert_to(p_line, 'UTF8')), 'hex');
        stamp timestamptz;
        key text;
    BEGIN
        BEGIN
            rec := p_line::jsonb;
        EXCEPTION WHEN others THEN
            RAISE EXCEPTION 'audit record is not JSON' USING ERRCODE = '{RECORD_STATE}';
        END;
        IF jsonb_typeof(rec) IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'audit record is not a JSON object' USING ERRCODE = '{RECORD_STATE}';
        END IF;
        FOR key IN SELECT jsonb_object_keys(rec) LOOP
            IF key NOT IN ({allowed_keys}) THEN
                RAISE EXCEPTION 'audit record has field %, which a record may not carry (the server computes the hash)',
                    key USING ERRCODE = '{RECORD_STATE}';
            END IF;
        END LOOP;
        IF rec->>'writer' IS DISTINCT FROM who THEN
            RAISE EXCEPTION 'audit record names writer %, but the login is %', rec->>'writer', who
                USING ERRCODE = '{IDENTITY_STATE}';
        END IF;
        IF jsonb_typeof(rec->'seq') IS DISTINCT FROM 'number' OR jsonb_typeof(rec->'operator') IS DISTINCT FROM 'string'
           OR rec->>'operator' = '' OR jsonb_typeof(rec->'data') IS DISTINCT FROM 'object' OR NOT rec ? 'prev_hash'
           OR rec->>'event' IS NULL OR rec->>'event' NOT IN ({allowed_events})
           OR COALESCE(rec->>'ts', '') !~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T[0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}\\.[0-9]{{6}}Z$'
           OR EXISTS (SELECT 1 FROM unnest(ARRAY['release_id', 'version', 'environment', 'outcome']) f
                      WHERE jsonb_typeof(rec->f) NOT IN ('string', 'null')) THEN
            RAISE EXCEPTION 'audit record is malformed (seq, ts, event, operator, data, prev_hash)'
                USING ERRCODE = '{RECORD_STATE}';
        END IF;
        stamp := (rec->>'ts')::timestamptz;
        IF abs(extract(epoch FROM stamp - now())) > extract(epoch FROM interval '{AUDIT_CLOCK_SKEW}') THEN
            RAISE EXCEPTION 'audit record time % is more than {AUDIT_CLOCK_SKEW} from the server''s %', stamp, now()
                USING ERRCODE = '{RECORD_STATE}';
        END IF;
        IF rec->>'event' = 'approval.recorded' AND NOT EXISTS (
                SELECT 1 FROM {schema}.approvals a WHERE a.release_id = rec->>'release_id' AND a.db_role = who
                AND lower(a.identity) = lower(rec->>'operator')) THEN
            RAISE EXCEPTION 'approval.recorded names % for %, but % recorded no such approval', rec->>'operator',
                rec->>'release_id', who USING ERRCODE = '{IDENTITY_STATE}';
        END IF;
        PERFORM pg_advisory_xact_lock(hashtextextended('{CHAIN_LOCK}', 0));
        SELECT seq, hash INTO head FROM {schema}.audit_records ORDER BY seq DESC LIMIT 1;
        IF (rec->>'seq')::numeric IS DISTINCT FROM COALESCE(head.seq, 0) + 1
           OR rec->>'prev_hash' IS DISTINCT FROM head.hash THEN
            RAISE EXCEPTION 'audit record % does not link to the chain head (seq %)', rec->>'seq', COALESCE(head.seq, 0)
                USING ERRCODE = '{RECORD_STATE}';
        END IF;
        INSERT INTO {schema}.audit_records (seq, hash, prev_hash, line, written_by)
            VALUES ((rec->>'seq')::bigint, digest, head.hash, p_line, who);
        RETURN digest;
    END $$"""


def v2(app_role: str, schema: str, audit_events: list[str]) -> list[str]:
    """Statements from version 1 to 2; v1 audit lines are rewritten to the hashed body (hash in its column)."""
    functions = [f"{schema}.save_release(jsonb)",
                 f"{schema}.record_approval(text, text, text, text, text, text, text, text, text, text)",
                 f"{schema}.append_audit(text)"]
    return [
        f"DROP TRIGGER approval_names_inserter ON {schema}.approvals",
        f"DROP FUNCTION {schema}.approval_names_inserter()",
        f"DROP TRIGGER audit_links_to_head ON {schema}.audit_records",
        f"DROP FUNCTION {schema}.audit_links_to_head()",
        f"DROP TRIGGER revision_names_inserter ON {schema}.release_revisions",
        f"DROP FUNCTION {schema}.revision_names_inserter()",
        f"REVOKE INSERT ON {schema}.release_revisions, {schema}.approvals, {schema}.audit_records FROM {app_role}",
        f"REVOKE USAGE ON SEQUENCE {schema}.approvals_id_seq FROM {app_role}",
        f"""CREATE TABLE {schema}.gate_policy (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            approvers text[] NOT NULL DEFAULT '{{}}',
            bots text[] NOT NULL DEFAULT '{{}}',
            required integer NOT NULL DEFAULT 1 CHECK (required BETWEEN 1 AND 5),
            forbid_self_approval boolean NOT NULL DEFAULT false,
            set_by name NOT NULL DEFAULT session_user,
            set_at timestamptz NOT NULL DEFAULT now())""",
        f"INSERT INTO {schema}.gate_policy DEFAULT VALUES",
        f"""CREATE TABLE {schema}.releases (
            release_id text PRIMARY KEY,
            project text NOT NULL,
            started_by name NOT NULL,
            releaser text NOT NULL,
            tag text NOT NULL,
            commit_sha text,
            run_id text,
            digest text,
            started_at timestamptz NOT NULL DEFAULT now())""",
        # Existing releases: their newest revision names the artifact; the first names who started them.
        f"""INSERT INTO {schema}.releases (release_id, project, started_by, releaser, tag, commit_sha, run_id, digest)
            SELECT DISTINCT ON (n.release_id) n.release_id, n.project, f.saved_by,
                   lower(COALESCE(n.body->>'releaser', f.saved_by)), n.body->>'tag', n.body->>'commit_sha',
                   n.body->'build'->>'run_id', n.body->'build'->>'digest'
            FROM {schema}.release_revisions n
            JOIN {schema}.release_revisions f ON f.release_id = n.release_id AND f.rev = 1
            ORDER BY n.release_id, n.rev DESC""",
        # Rows written before version 2 were not checked by the database: they keep `checked = false`
        # and no gate counts them (the client reads them as verified_by '<how> unchecked').
        f"ALTER TABLE {schema}.approvals ADD COLUMN checked boolean NOT NULL DEFAULT false",
        # Uniqueness per identity *and* how it was verified, case-insensitive.
        f"""DO $$ DECLARE c name; BEGIN
            FOR c IN SELECT conname FROM pg_constraint
                     WHERE conrelid = '{schema}.approvals'::regclass AND contype = 'u' LOOP
                EXECUTE format('ALTER TABLE {schema}.approvals DROP CONSTRAINT %I', c);
            END LOOP; END $$""",
        f"""CREATE UNIQUE INDEX approvals_one_per_identity ON {schema}.approvals
            (release_id, lower(identity), verified_by, tag, commit_sha, run_id, digest, smoke)""",
        # v1 lines carry their hash inside; v2 stores the hashed body, so the server can hash the line itself.
        f"""UPDATE {schema}.audit_records SET line = replace(line, '"hash":"' || hash || '",', '')""",
        f"""DO $$ DECLARE bad bigint; BEGIN
            SELECT min(seq) INTO bad FROM {schema}.audit_records
                WHERE encode(sha256(convert_to(line, 'UTF8')), 'hex') IS DISTINCT FROM hash;
            IF bad IS NOT NULL THEN
                RAISE EXCEPTION 'audit record seq % does not verify: restore the chain (coordinator audit verify) '
                    'before migrating', bad;
            END IF; END $$""",
        _acting_login(schema),
        _save_release(schema),
        _record_approval(schema),
        _append_audit(schema, audit_events),
        f"REVOKE ALL ON FUNCTION {schema}.acting_login() FROM PUBLIC",
        *[f"REVOKE ALL ON FUNCTION {name} FROM PUBLIC" for name in functions],
        *[f"GRANT EXECUTE ON FUNCTION {name} TO {app_role}" for name in functions],
        f"GRANT SELECT ON {schema}.gate_policy, {schema}.releases TO {app_role}",
    ]
