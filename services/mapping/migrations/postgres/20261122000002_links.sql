-- The link registry: one entity's ids in two systems, unique both ways.
CREATE TABLE links (
    tenant_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    system_a    TEXT NOT NULL,
    id_a        TEXT NOT NULL,
    system_b    TEXT NOT NULL,
    id_b        TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind, system_a, id_a, system_b)
);
CREATE UNIQUE INDEX links_reverse ON links (tenant_id, kind, system_b, id_b, system_a);
