-- A canonical description of what the extension metering put in this database,
-- one line per fact, sorted: test/upgrade/upgrade.sh compares it between a fresh
-- install and an install of 0.1.0 updated with ALTER EXTENSION ... UPDATE.
-- It covers every member object (by pg_describe_object), functions with their whole
-- definition (body, volatility, strictness, security, settings, parallel safety, cost,
-- rows, support), aggregates, types, columns (type, collation, default, identity,
-- generated, not null), constraints, indexes, triggers (and whether enabled), views,
-- sequences' parameters, access methods, grants (and initial privileges for dumps),
-- comments, the extension's configuration tables, and the extension's own settings.
\pset tuples_only on
\pset format unaligned
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'metering'),
members AS (
    SELECT d.classid, d.objid FROM pg_depend d, ext
    WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
),
rels AS (
    SELECT c.* FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'metering'
),
facts(line) AS (
    SELECT 'extension ' || e.extname || ' version=' || e.extversion || ' relocatable=' || e.extrelocatable
           || ' schema=' || e.extnamespace::regnamespace
           || ' config=' || coalesce((SELECT string_agg(c::regclass::text || ':' || coalesce(e.extcondition[i], ''), ',' ORDER BY c::regclass::text)
                                      FROM unnest(e.extconfig) WITH ORDINALITY AS u(c, i)), '')
    FROM pg_extension e WHERE e.extname = 'metering'
    UNION ALL
    SELECT 'member ' || pg_describe_object(m.classid, m.objid, 0) FROM members m
    UNION ALL
    SELECT 'schema metering owner=' || nspowner::regrole || ' acl=' || coalesce(nspacl::text, '')
    FROM pg_namespace WHERE nspname = 'metering'
    UNION ALL
    -- functions and procedures: the whole definition, their grants and comment
    SELECT 'function ' || p.oid::regprocedure || E'\n' || pg_get_functiondef(p.oid)
    FROM pg_proc p WHERE p.pronamespace = 'metering'::regnamespace AND p.prokind IN ('f', 'p')
    UNION ALL
    SELECT 'routine ' || p.oid::regprocedure || ' kind=' || p.prokind::text || ' owner=' || p.proowner::regrole
           || ' acl=' || coalesce(p.proacl::text, '') || ' leakproof=' || p.proleakproof
           || ' comment=' || coalesce(obj_description(p.oid, 'pg_proc'), '')
    FROM pg_proc p WHERE p.pronamespace = 'metering'::regnamespace
    UNION ALL
    SELECT 'aggregate ' || a.aggfnoid::regprocedure || ' kind=' || a.aggkind::text || ' trans=' || a.aggtransfn::regprocedure::text
           || ' final=' || a.aggfinalfn::text || ' combine=' || a.aggcombinefn::text || ' serial=' || a.aggserialfn::text
           || ' deserial=' || a.aggdeserialfn::text || ' stype=' || a.aggtranstype::regtype || ' sspace=' || a.aggtransspace
           || ' finalextra=' || a.aggfinalextra || ' finalmodify=' || a.aggfinalmodify::text || ' init=' || coalesce(a.agginitval, '')
           || ' msfunc=' || a.aggmtransfn::text || ' sortop=' || a.aggsortop::regoperator
    FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid WHERE p.pronamespace = 'metering'::regnamespace
    UNION ALL
    SELECT 'type ' || t.oid::regtype || ' type=' || t.typtype::text || ' len=' || t.typlen || ' align=' || t.typalign::text
           || ' storage=' || t.typstorage::text || ' in=' || t.typinput::text || ' out=' || t.typoutput::text
           || ' recv=' || t.typreceive::text || ' send=' || t.typsend::text || ' acl=' || coalesce(t.typacl::text, '')
           || ' comment=' || coalesce(obj_description(t.oid, 'pg_type'), '')
    FROM pg_type t WHERE t.typnamespace = 'metering'::regnamespace AND t.typrelid = 0 AND t.typelem = 0
    UNION ALL
    -- relations: kind, access method, options, owner, grants, comment
    SELECT 'relation ' || r.oid::regclass || ' kind=' || r.relkind::text || ' persistence=' || r.relpersistence::text
           || ' am=' || coalesce((SELECT amname FROM pg_am WHERE oid = r.relam), '')
           || ' options=' || coalesce(r.reloptions::text, '') || ' owner=' || r.relowner::regrole
           || ' acl=' || coalesce(r.relacl::text, '') || ' rowsecurity=' || r.relrowsecurity
           || ' partitioned_by=' || coalesce(pg_get_partkeydef(r.oid), '')
           || ' partition_of=' || coalesce((SELECT i.inhparent::regclass::text || ' ' || pg_get_expr(r.relpartbound, r.oid)
                                            FROM pg_inherits i WHERE i.inhrelid = r.oid), '')
           || ' comment=' || coalesce(obj_description(r.oid, 'pg_class'), '')
    FROM rels r WHERE r.relkind <> 'i' AND r.relkind <> 'I'
    UNION ALL
    SELECT 'column ' || r.oid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || ' num=' || a.attnum || ' notnull=' || a.attnotnull || ' collation=' || coalesce((SELECT collname FROM pg_collation WHERE oid = a.attcollation), '')
           || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '') || ' identity=' || a.attidentity::text
           || ' generated=' || a.attgenerated::text || ' storage=' || a.attstorage::text || ' acl=' || coalesce(a.attacl::text, '')
           || ' comment=' || coalesce(col_description(r.oid, a.attnum), '')
    FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef d ON d.adrelid = r.oid AND d.adnum = a.attnum
    WHERE r.relkind IN ('r', 'p', 'v', 'm', 'f')
    UNION ALL
    SELECT 'constraint ' || c.conrelid::regclass || ' ' || c.conname || ' ' || pg_get_constraintdef(c.oid)
           || ' deferrable=' || c.condeferrable || ' comment=' || coalesce(obj_description(c.oid, 'pg_constraint'), '')
    FROM pg_constraint c WHERE c.connamespace = 'metering'::regnamespace
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid) || ' comment=' || coalesce(obj_description(i.indexrelid, 'pg_class'), '')
    FROM pg_index i JOIN rels r ON r.oid = i.indrelid
    UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
    FROM pg_trigger t JOIN rels r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
    UNION ALL
    SELECT 'view ' || r.oid::regclass || E'\n' || pg_get_viewdef(r.oid)
    FROM rels r WHERE r.relkind IN ('v', 'm')
    UNION ALL
    SELECT 'sequence ' || s.seqrelid::regclass || ' type=' || s.seqtypid::regtype || ' start=' || s.seqstart
           || ' increment=' || s.seqincrement || ' max=' || s.seqmax || ' min=' || s.seqmin || ' cache=' || s.seqcache
           || ' cycle=' || s.seqcycle
    FROM pg_sequence s JOIN rels r ON r.oid = s.seqrelid
    UNION ALL
    SELECT 'policy ' || p.polrelid::regclass || ' ' || p.polname || ' cmd=' || p.polcmd::text || ' roles=' || p.polroles::regrole[]::text
           || ' using=' || coalesce(pg_get_expr(p.polqual, p.polrelid), '') || ' check=' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
    FROM pg_policy p JOIN rels r ON r.oid = p.polrelid
    UNION ALL
    SELECT 'access method ' || a.amname || ' type=' || a.amtype::text || ' handler=' || a.amhandler::regprocedure
           || ' comment=' || coalesce(obj_description(a.oid, 'pg_am'), '')
    FROM pg_am a JOIN members m ON m.classid = 'pg_am'::regclass AND m.objid = a.oid
    UNION ALL
    SELECT 'operator ' || o.oid::regoperator || ' proc=' || o.oprcode::regprocedure
    FROM pg_operator o WHERE o.oprnamespace = 'metering'::regnamespace
    UNION ALL
    SELECT 'event trigger ' || e.evtname || ' on=' || e.evtevent || ' fn=' || e.evtfoid::regprocedure || ' tags=' || coalesce(e.evttags::text, '')
    FROM pg_event_trigger e JOIN members m ON m.classid = 'pg_event_trigger'::regclass AND m.objid = e.oid
    UNION ALL
    -- what pg_dump restores as the extension's own grants
    SELECT 'init privs ' || pg_describe_object(ip.classoid, ip.objoid, ip.objsubid) || ' ' || ip.privtype::text || ' ' || ip.initprivs::text
    FROM pg_init_privs ip JOIN members m ON m.classid = ip.classoid AND m.objid = ip.objoid
)
SELECT line FROM facts ORDER BY line;
