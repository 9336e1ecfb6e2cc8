-- Grafana's own `data_source` and `secrets` tables exactly as Grafana's PostgreSQL migrations leave
-- them (pkg/services/sqlstore/migrations/datasource_mig.go and secrets_mig.go; statement text as
-- recorded in Grafana's `migration_log` on PostgreSQL). Tests create them in a fresh database to
-- stand in for "Grafana has started once"; chgate itself never runs this.

-- "create data_source table v2"
CREATE TABLE IF NOT EXISTS "data_source" (
"id" SERIAL PRIMARY KEY  NOT NULL
, "org_id" BIGINT NOT NULL
, "version" INTEGER NOT NULL
, "type" VARCHAR(255) NOT NULL
, "name" VARCHAR(190) NOT NULL
, "access" VARCHAR(255) NOT NULL
, "url" VARCHAR(255) NOT NULL
, "password" VARCHAR(255) NULL
, "user" VARCHAR(255) NULL
, "database" VARCHAR(255) NULL
, "basic_auth" BOOL NOT NULL
, "basic_auth_user" VARCHAR(255) NULL
, "basic_auth_password" VARCHAR(255) NULL
, "is_default" BOOL NOT NULL
, "json_data" TEXT NULL
, "created" TIMESTAMP NOT NULL
, "updated" TIMESTAMP NOT NULL
);
-- "create index IDX_data_source_org_id - v2", "create index UQE_data_source_org_id_name - v2"
CREATE INDEX "IDX_data_source_org_id" ON "data_source" ("org_id");
CREATE UNIQUE INDEX "UQE_data_source_org_id_name" ON "data_source" ("org_id","name");
-- "Add column with_credentials", "Add secure json data column", "Add read_only data column"
alter table "data_source" ADD COLUMN "with_credentials" BOOL NOT NULL DEFAULT FALSE;
alter table "data_source" ADD COLUMN "secure_json_data" TEXT NULL;
alter table "data_source" ADD COLUMN "read_only" BOOL NULL;
-- "Add uid column", "Add unique index datasource_org_id_uid",
-- "add unique index datasource_org_id_is_default" (despite its id, a plain index)
alter table "data_source" ADD COLUMN "uid" VARCHAR(40) NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX "UQE_data_source_org_id_uid" ON "data_source" ("org_id","uid");
CREATE INDEX "IDX_data_source_org_id_is_default" ON "data_source" ("org_id","is_default");
-- "Add is_prunable column", "Add api_version column"
alter table "data_source" ADD COLUMN "is_prunable" BOOL NULL DEFAULT false;
alter table "data_source" ADD COLUMN "api_version" VARCHAR(20) NULL;

-- @secrets (Grafana 8.5+; the marker lets tests leave it out to play an older Grafana)
-- "create secrets table". secrets_mig.go declares indices on (org_id), (org_id, namespace) and a
-- unique (org_id, namespace, type), but only NewAddTableMigration runs: Grafana's PostgreSQL has
-- no index on this table besides the primary key, so duplicates are possible.
CREATE TABLE IF NOT EXISTS "secrets" (
"id" SERIAL PRIMARY KEY  NOT NULL
, "org_id" BIGINT NOT NULL
, "namespace" VARCHAR(255) NOT NULL
, "type" VARCHAR(255) NOT NULL
, "value" TEXT NULL
, "created" TIMESTAMP NOT NULL
, "updated" TIMESTAMP NOT NULL
);

-- Envelope encryption's data keys (Grafana 9+), replayed through the same migrations so the final
-- shape matches: "create data_keys table", "rename data_keys name column to id", "add name column
-- into data_keys", "copy data_keys id column values into name", "rename data_keys name column to
-- label", "rename data_keys id column back to name".
CREATE TABLE IF NOT EXISTS "data_keys" (
"name" VARCHAR(100) PRIMARY KEY NOT NULL
, "active" BOOL NOT NULL
, "scope" VARCHAR(30) NOT NULL
, "provider" VARCHAR(50) NOT NULL
, "encrypted_data" BYTEA NOT NULL
, "created" TIMESTAMP NOT NULL
, "updated" TIMESTAMP NOT NULL
);
ALTER TABLE "data_keys" RENAME COLUMN "name" TO "id";
alter table "data_keys" ADD COLUMN "name" VARCHAR(100) NOT NULL DEFAULT '';
UPDATE data_keys SET name = id;
ALTER TABLE "data_keys" RENAME COLUMN "name" TO "label";
ALTER TABLE "data_keys" RENAME COLUMN "id" TO "name";
