-- tidemark: DDL capture for PostgreSQL (capture/postgres/README.md, "DDL"). Run once per captured database, as a
-- superuser (event triggers need one):   psql -v ON_ERROR_STOP=1 -d <database> -f capture/postgres/ddl-triggers.sql
-- Idempotent. Each DDL command that ends (ddl_command_end) or drops objects (sql_drop, for DROP commands) writes a
-- transactional logical message 'tidemark.ddl' into the WAL: it is decoded in the DDL's own transaction, in
-- commit order, before the changes that follow it. The message is JSON:
--   {"tag": command tag, "sql": current_query(), "schema": current_schema(), "search_path": …,
--    "objects": [{"type", "schema", "identity", "name", "oid" (pg_class objects), "relid" (the table of a table, a
--                 column or an index; null for other objects, and for an index that was dropped)}]}
-- Remove with: DROP EVENT TRIGGER tidemark_ddl_end; DROP EVENT TRIGGER tidemark_ddl_drop;
--              DROP FUNCTION tidemark.ddl_event();
-- The old triggers go first: a broken one would stop every statement below.
DROP EVENT TRIGGER IF EXISTS tidemark_ddl_end;
DROP EVENT TRIGGER IF EXISTS tidemark_ddl_drop;
CREATE SCHEMA IF NOT EXISTS tidemark;

-- Both triggers: ddl_command_end reports every command but DROP; sql_drop reports DROP commands with the objects
-- they dropped (not ALTER TABLE … DROP COLUMN, which ddl_command_end reports).
CREATE OR REPLACE FUNCTION tidemark.ddl_event() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
DECLARE
  objs jsonb;
BEGIN
  IF (TG_EVENT = 'sql_drop') <> (TG_TAG LIKE 'DROP %') THEN
    RETURN;
  END IF;
  IF TG_EVENT = 'sql_drop' THEN
    SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
             'type', o.object_type, 'schema', o.schema_name, 'identity', o.object_identity, 'name', o.object_name,
             'oid', CASE WHEN o.classid = 'pg_catalog.pg_class'::pg_catalog.regclass THEN o.objid END,
             'relid', CASE WHEN o.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND o.object_type = 'table'
                        THEN o.objid END)), '[]'::pg_catalog.jsonb)
      INTO objs
      FROM pg_catalog.pg_event_trigger_dropped_objects() o
     WHERE NOT o.is_temporary;
  ELSE
    SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
             'type', c.object_type, 'schema', c.schema_name, 'identity', c.object_identity,
             'name', (SELECT r.relname FROM pg_catalog.pg_class r WHERE r.oid = c.objid
                       AND c.classid = 'pg_catalog.pg_class'::pg_catalog.regclass),
             'oid', CASE WHEN c.classid = 'pg_catalog.pg_class'::pg_catalog.regclass THEN c.objid END,
             'relid', (SELECT CASE WHEN r.relkind IN ('r', 'p') THEN r.oid
                                   WHEN r.relkind IN ('i', 'I') THEN
                                     (SELECT i.indrelid FROM pg_catalog.pg_index i WHERE i.indexrelid = r.oid) END
                         FROM pg_catalog.pg_class r
                        WHERE r.oid = c.objid AND c.classid = 'pg_catalog.pg_class'::pg_catalog.regclass)
           )), '[]'::pg_catalog.jsonb)
      INTO objs
      FROM pg_catalog.pg_event_trigger_ddl_commands() c
     WHERE NOT c.in_extension;
  END IF;
  PERFORM pg_catalog.pg_logical_emit_message(true, 'tidemark.ddl', pg_catalog.jsonb_build_object(
    'tag', TG_TAG, 'sql', pg_catalog.current_query(), 'schema', pg_catalog.current_schema(),
    'search_path', pg_catalog.current_setting('search_path'), 'objects', objs)::text);
END
$fn$;

CREATE EVENT TRIGGER tidemark_ddl_end ON ddl_command_end EXECUTE FUNCTION tidemark.ddl_event();
CREATE EVENT TRIGGER tidemark_ddl_drop ON sql_drop EXECUTE FUNCTION tidemark.ddl_event();
