//! The link registry: which id in one system is which id in another, per tenant and entity
//! kind. A pair is stored once, in a canonical order, and is unique both ways. A new link is
//! audited; repeating an existing one changes nothing and records nothing.

use ponte_core::{
    db::Database,
    error::ServiceError,
    time::{now_millis, to_timestamp},
};
use std::collections::{HashMap, HashSet};

use ponte_proto::v1::{BatchLinkResult, EntityKind, EntityLink, Provider};
use serde_json::json;
use sqlx::{Any, AnyConnection, Row, Transaction};

use crate::audit::{self, Change};

fn kind_name(k: i32) -> Result<&'static str, ServiceError> {
    match EntityKind::try_from(k) {
        Ok(EntityKind::Product) => Ok("product"),
        Ok(EntityKind::Order) => Ok("order"),
        Ok(EntityKind::Contact) => Ok("contact"),
        Ok(EntityKind::Deal) => Ok("deal"),
        _ => Err(ServiceError::invalid("kind", "must be ENTITY_KIND_PRODUCT, _ORDER, _CONTACT or _DEAL")),
    }
}

fn system_name(field: &str, p: i32) -> Result<&'static str, ServiceError> {
    match Provider::try_from(p) {
        Ok(Provider::Bling) => Ok("bling"),
        Ok(Provider::Bitrix24) => Ok("bitrix24"),
        Ok(Provider::Envios360) => Ok("envios360"),
        Ok(Provider::Cplug) => Ok("cplug"),
        _ => Err(ServiceError::invalid(field, "must name a provider")),
    }
}

/// Most links or ids one batch call takes.
pub const BATCH_LIMIT: usize = 1000;

/// A link in its stored form: its kind, and the pair ordered by system name.
struct Canonical<'a> {
    kind: &'static str,
    a: (&'static str, &'a str),
    b: (&'static str, &'a str),
}

/// `l` checked (errors name `field`.kind, `field`.id_a, …) and put in its stored order.
fn canonical<'a>(l: &'a EntityLink, field: &str) -> Result<Canonical<'a>, ServiceError> {
    let kind = kind_name(l.kind).map_err(|_| {
        ServiceError::invalid(format!("{field}.kind"), "must be ENTITY_KIND_PRODUCT, _ORDER, _CONTACT or _DEAL")
    })?;
    let (mut a, mut b) = (
        (system_name(&format!("{field}.system_a"), l.system_a)?, l.id_a.trim()),
        (system_name(&format!("{field}.system_b"), l.system_b)?, l.id_b.trim()),
    );
    ServiceError::require(&format!("{field}.id_a"), a.1)?;
    ServiceError::require(&format!("{field}.id_b"), b.1)?;
    if a.0 == b.0 {
        return Err(ServiceError::invalid(format!("{field}.system_b"), "must differ from system_a"));
    }
    if a.0 > b.0 {
        std::mem::swap(&mut a, &mut b);
    }
    Ok(Canonical { kind, a, b })
}

/// Stores a link; `false` when the same link already existed.
pub async fn link(db: &Database, l: &EntityLink, actor: &str) -> Result<bool, ServiceError> {
    let c = canonical(l, "link")?;
    let mut tx = db.pool().begin().await?;
    let created = link_in(&mut tx, &l.tenant_id, &c, actor).await?;
    tx.commit().await?;
    Ok(created)
}

/// Stores many links of one tenant in one transaction; each link's result, in order. The links
/// whose ids no earlier link of the batch names are written in one statement (the database's
/// unique indexes, not a prior read, decide which are new); only those it did not take, and
/// those that share an id with an earlier link of the batch, are then settled one by one as
/// [`link`] would. The new links' audit entries go in one more statement, and the batch commits
/// once.
pub async fn batch_link(
    db: &Database,
    links: &[EntityLink],
    actor: &str,
) -> Result<Vec<BatchLinkResult>, ServiceError> {
    if links.len() > BATCH_LIMIT {
        return Err(ServiceError::invalid("links", format!("at most {BATCH_LIMIT} a call, not {}", links.len())));
    }
    let Some(first) = links.first() else { return Ok(Vec::new()) };
    let tenant_id = first.tenant_id.as_str();
    let mut canon = Vec::with_capacity(links.len());
    for (i, l) in links.iter().enumerate() {
        if l.tenant_id != tenant_id {
            return Err(ServiceError::invalid(format!("links[{i}].tenant_id"), "must be links[0]'s tenant"));
        }
        canon.push(canonical(l, &format!("links[{i}]"))?);
    }
    // Each side of each link once: the first link naming an id goes in the bulk insert.
    let mut named = HashSet::new();
    let mut bulk = Vec::new();
    for (i, c) in canon.iter().enumerate() {
        let sides = [(c.kind, c.a.0, c.b.0, 'a', c.a.1), (c.kind, c.a.0, c.b.0, 'b', c.b.1)];
        if sides.iter().all(|side| !named.contains(side)) {
            bulk.push(i);
        }
        named.extend(sides);
    }
    let mut tx = db.pool().begin().await?;
    let candidates: Vec<&Canonical<'_>> = bulk.iter().map(|&i| &canon[i]).collect();
    let taken: HashSet<usize> =
        insert_all(&mut tx, tenant_id, &candidates, actor).await?.into_iter().map(|k| bulk[k]).collect();
    let mut out = Vec::with_capacity(links.len());
    for (i, (l, c)) in links.iter().zip(&canon).enumerate() {
        let (created, conflict) = if taken.contains(&i) {
            (true, String::new())
        } else {
            match link_in(&mut tx, tenant_id, c, actor).await {
                Ok(created) => (created, String::new()),
                Err(ServiceError::AlreadyExists(why)) => (false, why),
                Err(e) => return Err(e),
            }
        };
        out.push(BatchLinkResult { link: Some(answered(l)), created, conflict });
    }
    tx.commit().await?;
    Ok(out)
}

/// Inserts `links` where neither side is linked yet, with the audit entries of those taken;
/// the positions in `links` of those the database took.
async fn insert_all(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &str,
    links: &[&Canonical<'_>],
    actor: &str,
) -> Result<Vec<usize>, ServiceError> {
    let now = now_millis();
    let mut taken: HashSet<(&str, &str, &str, String)> = HashSet::new();
    for chunk in links.chunks(100) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|r| {
                let n = r * 5 + 2;
                format!("($1, ${}, ${}, ${}, ${}, ${}, {now})", n, n + 1, n + 2, n + 3, n + 4)
            })
            .collect();
        let sql = format!(
            "INSERT INTO links (tenant_id, kind, system_a, id_a, system_b, id_b, create_time) VALUES {} \
             ON CONFLICT DO NOTHING RETURNING kind, system_a, system_b, id_a",
            rows.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant_id);
        for c in chunk {
            q = q.bind(c.kind).bind(c.a.0).bind(c.a.1).bind(c.b.0).bind(c.b.1);
        }
        for row in q.fetch_all(&mut **tx).await? {
            let (kind, sys_a, sys_b): (String, String, String) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            let Some(c) = chunk.iter().find(|c| c.kind == kind && c.a.0 == sys_a && c.b.0 == sys_b) else { continue };
            taken.insert((c.kind, c.a.0, c.b.0, row.try_get(3)?));
        }
    }
    let new: Vec<(usize, &Canonical<'_>)> = links
        .iter()
        .enumerate()
        .filter(|(_, c)| taken.contains(&(c.kind, c.a.0, c.b.0, c.a.1.to_owned())))
        .map(|(i, c)| (i, *c))
        .collect();
    let keys: Vec<String> =
        new.iter().map(|(_, c)| format!("{} {}:{} {}:{}", c.kind, c.a.0, c.a.1, c.b.0, c.b.1)).collect();
    let changes = new
        .iter()
        .zip(&keys)
        .map(|((_, c), key)| Change {
            tenant_id,
            table: "link",
            key,
            action: "create",
            actor,
            previous: None,
            new: Some(json!({"kind": c.kind, "system_a": c.a.0, "id_a": c.a.1, "system_b": c.b.0, "id_b": c.b.1})),
        })
        .collect();
    audit::record_many(tx, changes).await?;
    Ok(new.into_iter().map(|(i, _)| i).collect())
}

/// Stores `c` within `tx` unless it is there already (`false`); ALREADY_EXISTS when either
/// side is linked to another id. A concurrent transaction storing the same row makes this one
/// wait for it, then find it.
async fn link_in(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &str,
    c: &Canonical<'_>,
    actor: &str,
) -> Result<bool, ServiceError> {
    let Canonical { kind, a, b } = *c;
    let taken = |side: (&str, &str), other_system: &str, other: &str| {
        ServiceError::AlreadyExists(format!(
            "{kind} {} '{}' is already linked to {other_system} '{other}'",
            side.0, side.1
        ))
    };
    for _ in 0..2 {
        if let Some(other) = counterpart(&mut **tx, tenant_id, kind, a, b.0).await? {
            return if other == b.1 { Ok(false) } else { Err(taken(a, b.0, &other)) };
        }
        if let Some(other) = counterpart(&mut **tx, tenant_id, kind, b, a.0).await? {
            return Err(taken(b, a.0, &other));
        }
        let inserted = sqlx::query(
            "INSERT INTO links (tenant_id, kind, system_a, id_a, system_b, id_b, create_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(tenant_id)
        .bind(kind)
        .bind(a.0)
        .bind(a.1)
        .bind(b.0)
        .bind(b.1)
        .bind(now_millis())
        .execute(&mut **tx)
        .await?;
        if inserted.rows_affected() == 0 {
            // Stored meanwhile by another transaction: look again.
            continue;
        }
        let key = format!("{kind} {}:{} {}:{}", a.0, a.1, b.0, b.1);
        let new = json!({"kind": kind, "system_a": a.0, "id_a": a.1, "system_b": b.0, "id_b": b.1});
        let change =
            Change { tenant_id, table: "link", key: &key, action: "create", actor, previous: None, new: Some(new) };
        audit::record(tx, change).await?;
        return Ok(true);
    }
    Err(ServiceError::unavailable("the link registry changed under this link; try again", None))
}

/// The id in system `to` linked to `from` (a system and id), whichever order the pair is stored in.
async fn counterpart<'c, E: sqlx::Executor<'c, Database = Any>>(
    ex: E,
    tenant_id: &str,
    kind: &str,
    from: (&str, &str),
    to: &str,
) -> Result<Option<String>, ServiceError> {
    let sql = if from.0 < to {
        "SELECT id_b FROM links WHERE tenant_id = $1 AND kind = $2 AND system_a = $3 AND id_a = $4 AND system_b = $5"
    } else {
        "SELECT id_a FROM links WHERE tenant_id = $1 AND kind = $2 AND system_b = $3 AND id_b = $4 AND system_a = $5"
    };
    let row = sqlx::query(sql).bind(tenant_id).bind(kind).bind(from.0).bind(from.1).bind(to).fetch_optional(ex).await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// The linked id in system `to` of each of `ids` in system `from`, as (id, linked id), for the
/// linked ones, in one statement: a correlated look-up on the whole unique key per id. On a
/// registry that has just grown from nothing (a first backfill), before PostgreSQL has
/// statistics for it, an `IN` list was planned as a scan of the tenant's rows (50–250 ms for
/// 100 ids, measured); this form took 3 ms there in the direction a backfill uses.
async fn lookup(
    conn: &mut AnyConnection,
    tenant_id: &str,
    kind: &str,
    from: &str,
    ids: &[&str],
    to: &str,
) -> Result<Vec<(String, String)>, ServiceError> {
    let (from_col, to_col, from_sys, to_sys) =
        if from < to { ("id_a", "id_b", "system_a", "system_b") } else { ("id_b", "id_a", "system_b", "system_a") };
    let mut found = Vec::new();
    // A few hundred parameters a statement, well inside every driver's limit.
    for chunk in ids.chunks(250) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| if i == 0 { "(CAST($5 AS TEXT))".to_owned() } else { format!("(${})", i + 5) })
            .collect();
        let sql = format!(
            "WITH v (id) AS (VALUES {}) SELECT v.id, (SELECT l.{to_col} FROM links l WHERE l.tenant_id = $1 \
             AND l.kind = $2 AND l.{from_sys} = $3 AND l.{from_col} = v.id AND l.{to_sys} = $4) FROM v",
            rows.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant_id).bind(kind).bind(from).bind(to);
        for id in chunk {
            q = q.bind(*id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            if let Some(linked) = row.try_get::<Option<String>, _>(1)? {
                found.push((row.try_get::<String, _>(0)?, linked));
            }
        }
    }
    Ok(found)
}

/// The ids in `to` linked to `from_ids` in `from`, by from id (unlinked ones left out).
pub async fn batch_resolve(
    db: &Database,
    tenant_id: &str,
    kind: i32,
    from: i32,
    from_ids: &[String],
    to: i32,
) -> Result<HashMap<String, String>, ServiceError> {
    let kind = kind_name(kind)?;
    let (from, to) = (system_name("from_system", from)?, system_name("to_system", to)?);
    if from == to {
        return Err(ServiceError::invalid("to_system", "must differ from from_system"));
    }
    if from_ids.len() > BATCH_LIMIT {
        return Err(ServiceError::invalid("from_ids", format!("at most {BATCH_LIMIT} a call, not {}", from_ids.len())));
    }
    for (i, id) in from_ids.iter().enumerate() {
        ServiceError::require(&format!("from_ids[{i}]"), id)?;
    }
    let ids: Vec<&str> = from_ids.iter().map(|id| id.trim()).collect();
    let mut conn = db.pool().acquire().await?;
    let found = lookup(&mut conn, tenant_id, kind, from, &ids, to).await?;
    Ok(found.into_iter().collect())
}

/// The id in `to` linked to `from_id` in `from`.
pub async fn resolve(
    db: &Database,
    tenant_id: &str,
    kind: i32,
    from: i32,
    from_id: &str,
    to: i32,
) -> Result<Option<String>, ServiceError> {
    let kind = kind_name(kind)?;
    let (from, to) = (system_name("from_system", from)?, system_name("to_system", to)?);
    let from_id = ServiceError::require("from_id", from_id)?;
    if from == to {
        return Err(ServiceError::invalid("to_system", "must differ from from_system"));
    }
    counterpart(db.pool(), tenant_id, kind, (from, from_id), to).await
}

/// The stored form of a link, for answers.
pub fn answered(l: &EntityLink) -> EntityLink {
    EntityLink { create_time: Some(to_timestamp(now_millis())), ..l.clone() }
}
