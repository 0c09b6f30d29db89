//! The link registry: which id in one system is which id in another, per tenant and entity
//! kind. A pair is stored once, in a canonical order, and is unique both ways. A new link is
//! audited; repeating an existing one changes nothing and records nothing.

use std::collections::{HashMap, HashSet};

use ponte_core::{
    TenantId,
    db::Database,
    error::ServiceError,
    time::{now_millis, to_timestamp},
};
use ponte_proto::v1::{BatchLinkResult, EntityKind, EntityLink, Provider};
use serde_json::json;
use sqlx::{Any, AnyConnection, Transaction};

use crate::audit::{self, Change, Table};

/// The kind of entity a link is about, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Product,
    Order,
    Contact,
    Deal,
}

impl Kind {
    fn from_proto(field: &str, raw: i32) -> Result<Self, ServiceError> {
        match EntityKind::try_from(raw) {
            Ok(EntityKind::Product) => Ok(Self::Product),
            Ok(EntityKind::Order) => Ok(Self::Order),
            Ok(EntityKind::Contact) => Ok(Self::Contact),
            Ok(EntityKind::Deal) => Ok(Self::Deal),
            _ => Err(ServiceError::invalid(field, "must be ENTITY_KIND_PRODUCT, _ORDER, _CONTACT or _DEAL")),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Product => "product",
            Self::Order => "order",
            Self::Contact => "contact",
            Self::Deal => "deal",
        }
    }
}

/// A system a link names, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum System {
    Bling,
    Bitrix24,
    Envios360,
    Cplug,
}

impl System {
    fn from_proto(field: &str, raw: i32) -> Result<Self, ServiceError> {
        match Provider::try_from(raw) {
            Ok(Provider::Bling) => Ok(Self::Bling),
            Ok(Provider::Bitrix24) => Ok(Self::Bitrix24),
            Ok(Provider::Envios360) => Ok(Self::Envios360),
            Ok(Provider::Cplug) => Ok(Self::Cplug),
            _ => Err(ServiceError::invalid(field, "must name a provider")),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Bling => "bling",
            Self::Bitrix24 => "bitrix24",
            Self::Envios360 => "envios360",
            Self::Cplug => "cplug",
        }
    }
}

/// Most links or ids one batch call takes.
pub const BATCH_LIMIT: usize = 1000;

/// A link in its stored form: its kind, and the pair ordered by system name.
struct Canonical<'a> {
    kind: Kind,
    a: (System, &'a str),
    b: (System, &'a str),
}

impl Canonical<'_> {
    /// The link's key in the audit trail.
    fn key(&self) -> String {
        let (kind, a, b) = (self.kind.as_str(), self.a, self.b);
        format!("{kind} {}:{} {}:{}", a.0.as_str(), a.1, b.0.as_str(), b.1)
    }

    fn as_json(&self) -> serde_json::Value {
        json!({"kind": self.kind.as_str(), "system_a": self.a.0.as_str(), "id_a": self.a.1,
               "system_b": self.b.0.as_str(), "id_b": self.b.1})
    }
}

/// `l` checked (errors name `field`.kind, `field`.id_a, …) and put in its stored order.
fn canonical<'a>(l: &'a EntityLink, field: &str) -> Result<Canonical<'a>, ServiceError> {
    let kind = Kind::from_proto(&format!("{field}.kind"), l.kind)?;
    let (mut a, mut b) = (
        (System::from_proto(&format!("{field}.system_a"), l.system_a)?, l.id_a.trim()),
        (System::from_proto(&format!("{field}.system_b"), l.system_b)?, l.id_b.trim()),
    );
    ServiceError::require(&format!("{field}.id_a"), a.1)?;
    ServiceError::require(&format!("{field}.id_b"), b.1)?;
    if a.0 == b.0 {
        return Err(ServiceError::invalid(format!("{field}.system_b"), "must differ from system_a"));
    }
    if a.0.as_str() > b.0.as_str() {
        std::mem::swap(&mut a, &mut b);
    }
    Ok(Canonical { kind, a, b })
}

/// Stores a link; `false` when the same link already existed.
pub async fn link(db: &Database, tenant: &TenantId, l: &EntityLink, actor: &str) -> Result<bool, ServiceError> {
    let c = canonical(l, "link")?;
    let mut tx = db.pool().begin().await?;
    let created = link_in(&mut tx, tenant, &c, actor).await?;
    tx.commit().await?;
    Ok(created)
}

/// Stores many links of one tenant in one transaction; each link's result, in order. The links
/// whose ids no earlier link of the batch names are written in one statement (the database's
/// unique indexes, not a prior read, decide which are new); only those it did not take, and
/// those that share an id with an earlier link of the batch, are then settled one by one as
/// [`link`] would. The new links' audit entries go in one more statement, and the batch commits
/// once. Every link must be of `tenant`, the first link's.
pub async fn batch_link(
    db: &Database,
    tenant: &TenantId,
    links: &[EntityLink],
    actor: &str,
) -> Result<Vec<BatchLinkResult>, ServiceError> {
    if links.len() > BATCH_LIMIT {
        return Err(ServiceError::invalid("links", format!("at most {BATCH_LIMIT} a call, not {}", links.len())));
    }
    let mut canon = Vec::with_capacity(links.len());
    for (i, l) in links.iter().enumerate() {
        if l.tenant_id != tenant.as_str() {
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
        insert_all(&mut tx, tenant, &candidates, actor).await?.into_iter().map(|k| bulk[k]).collect();
    let mut out = Vec::with_capacity(links.len());
    for (i, (l, c)) in links.iter().zip(&canon).enumerate() {
        let (created, conflict) = if taken.contains(&i) {
            (true, String::new())
        } else {
            match link_in(&mut tx, tenant, c, actor).await {
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

/// A row the bulk insert took, as it names it back.
#[derive(sqlx::FromRow)]
struct Inserted {
    kind: String,
    system_a: String,
    system_b: String,
    id_a: String,
}

/// Inserts `links` where neither side is linked yet, with the audit entries of those taken;
/// the positions in `links` of those the database took.
async fn insert_all(
    tx: &mut Transaction<'_, Any>,
    tenant: &TenantId,
    links: &[&Canonical<'_>],
    actor: &str,
) -> Result<Vec<usize>, ServiceError> {
    const WIDTH: usize = 7;
    let now = now_millis();
    let mut taken: HashSet<(Kind, System, System, String)> = HashSet::new();
    for chunk in links.chunks(100) {
        let sql = format!(
            "INSERT INTO links (tenant_id, kind, system_a, id_a, system_b, id_b, create_time) VALUES {} \
             ON CONFLICT DO NOTHING RETURNING kind, system_a, system_b, id_a",
            ponte_core::sql::tuples(chunk.len(), WIDTH)
        );
        let mut q = sqlx::query_as::<_, Inserted>(sqlx::AssertSqlSafe(sql));
        for c in chunk {
            q = q
                .bind(tenant.as_str())
                .bind(c.kind.as_str())
                .bind(c.a.0.as_str())
                .bind(c.a.1.to_owned())
                .bind(c.b.0.as_str())
                .bind(c.b.1.to_owned())
                .bind(now);
        }
        for row in q.fetch_all(&mut **tx).await? {
            let named = |c: &&&Canonical<'_>| {
                c.kind.as_str() == row.kind && c.a.0.as_str() == row.system_a && c.b.0.as_str() == row.system_b
            };
            let Some(c) = chunk.iter().find(named) else { continue };
            taken.insert((c.kind, c.a.0, c.b.0, row.id_a));
        }
    }
    let new: Vec<(usize, &Canonical<'_>)> = links
        .iter()
        .enumerate()
        .filter(|(_, c)| taken.contains(&(c.kind, c.a.0, c.b.0, c.a.1.to_owned())))
        .map(|(i, c)| (i, *c))
        .collect();
    let keys: Vec<String> = new.iter().map(|(_, c)| c.key()).collect();
    let changes = new
        .iter()
        .zip(&keys)
        .map(|((_, c), key)| Change::create(tenant, Table::Link, key, actor, c.as_json()))
        .collect();
    audit::record_many(tx, changes).await?;
    Ok(new.into_iter().map(|(i, _)| i).collect())
}

/// Stores `c` within `tx` unless it is there already (`false`); ALREADY_EXISTS when either
/// side is linked to another id. A concurrent transaction storing the same row makes this one
/// wait for it, then find it.
async fn link_in(
    tx: &mut Transaction<'_, Any>,
    tenant: &TenantId,
    c: &Canonical<'_>,
    actor: &str,
) -> Result<bool, ServiceError> {
    let Canonical { kind, a, b } = *c;
    let taken = |side: (System, &str), other_system: System, other: &str| {
        ServiceError::AlreadyExists(format!(
            "{} {} '{}' is already linked to {} '{other}'",
            kind.as_str(),
            side.0.as_str(),
            side.1,
            other_system.as_str()
        ))
    };
    for _ in 0..2 {
        if let Some(other) = counterpart(&mut **tx, tenant, kind, a, b.0).await? {
            return if other == b.1 { Ok(false) } else { Err(taken(a, b.0, &other)) };
        }
        if let Some(other) = counterpart(&mut **tx, tenant, kind, b, a.0).await? {
            return Err(taken(b, a.0, &other));
        }
        let inserted = sqlx::query(
            "INSERT INTO links (tenant_id, kind, system_a, id_a, system_b, id_b, create_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(kind.as_str())
        .bind(a.0.as_str())
        .bind(a.1)
        .bind(b.0.as_str())
        .bind(b.1)
        .bind(now_millis())
        .execute(&mut **tx)
        .await?;
        if inserted.rows_affected() == 0 {
            // Stored meanwhile by another transaction: look again.
            continue;
        }
        let key = c.key();
        audit::record(tx, Change::create(tenant, Table::Link, &key, actor, c.as_json())).await?;
        return Ok(true);
    }
    Err(ServiceError::unavailable("the link registry changed under this link; try again", None))
}

/// The id in system `to` linked to `from` (a system and id), whichever order the pair is stored in.
async fn counterpart<'c, E: sqlx::Executor<'c, Database = Any>>(
    ex: E,
    tenant: &TenantId,
    kind: Kind,
    from: (System, &str),
    to: System,
) -> Result<Option<String>, ServiceError> {
    let sql = if from.0.as_str() < to.as_str() {
        "SELECT id_b FROM links WHERE tenant_id = $1 AND kind = $2 AND system_a = $3 AND id_a = $4 AND system_b = $5"
    } else {
        "SELECT id_a FROM links WHERE tenant_id = $1 AND kind = $2 AND system_b = $3 AND id_b = $4 AND system_a = $5"
    };
    Ok(sqlx::query_scalar(sql)
        .bind(tenant.as_str())
        .bind(kind.as_str())
        .bind(from.0.as_str())
        .bind(from.1.to_owned())
        .bind(to.as_str())
        .fetch_optional(ex)
        .await?)
}

/// One id asked for and the id linked to it, if any.
#[derive(sqlx::FromRow)]
struct Found {
    id: String,
    linked: Option<String>,
}

/// The linked id in system `to` of each of `ids` in system `from`, as (id, linked id), for the
/// linked ones, in one statement: a correlated look-up on the whole unique key per id. On a
/// registry that has just grown from nothing (a first backfill), before PostgreSQL has
/// statistics for it, an `IN` list was planned as a scan of the tenant's rows (50–250 ms for
/// 100 ids, measured); this form took 3 ms there in the direction a backfill uses.
async fn lookup(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    kind: Kind,
    from: System,
    ids: &[&str],
    to: System,
) -> Result<Vec<(String, String)>, ServiceError> {
    let (from_col, to_col, from_sys, to_sys) = if from.as_str() < to.as_str() {
        ("id_a", "id_b", "system_a", "system_b")
    } else {
        ("id_b", "id_a", "system_b", "system_a")
    };
    let mut found = Vec::new();
    // A few hundred parameters a statement, well inside every driver's limit.
    for chunk in ids.chunks(250) {
        // The first row's cast gives PostgreSQL the column's type.
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| if i == 0 { "(CAST($5 AS TEXT))".to_owned() } else { format!("(${})", i + 5) })
            .collect();
        let sql = format!(
            "WITH v (id) AS (VALUES {}) SELECT v.id AS id, (SELECT l.{to_col} FROM links l WHERE l.tenant_id = $1 \
             AND l.kind = $2 AND l.{from_sys} = $3 AND l.{from_col} = v.id AND l.{to_sys} = $4) AS linked FROM v",
            rows.join(", ")
        );
        let mut q = sqlx::query_as::<_, Found>(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(kind.as_str())
            .bind(from.as_str())
            .bind(to.as_str());
        for id in chunk {
            q = q.bind((*id).to_owned());
        }
        for row in q.fetch_all(&mut *conn).await? {
            if let Some(linked) = row.linked {
                found.push((row.id, linked));
            }
        }
    }
    Ok(found)
}

/// Checks a look-up's kind and systems, naming the request's fields.
fn lookup_of(kind: i32, from: i32, to: i32) -> Result<(Kind, System, System), ServiceError> {
    let kind = Kind::from_proto("kind", kind)?;
    let (from, to) = (System::from_proto("from_system", from)?, System::from_proto("to_system", to)?);
    if from == to {
        return Err(ServiceError::invalid("to_system", "must differ from from_system"));
    }
    Ok((kind, from, to))
}

/// The ids in `to` linked to `from_ids` in `from`, by from id (unlinked ones left out).
pub async fn batch_resolve(
    db: &Database,
    tenant: &TenantId,
    kind: i32,
    from: i32,
    from_ids: &[String],
    to: i32,
) -> Result<HashMap<String, String>, ServiceError> {
    let (kind, from, to) = lookup_of(kind, from, to)?;
    if from_ids.len() > BATCH_LIMIT {
        return Err(ServiceError::invalid("from_ids", format!("at most {BATCH_LIMIT} a call, not {}", from_ids.len())));
    }
    for (i, id) in from_ids.iter().enumerate() {
        ServiceError::require(&format!("from_ids[{i}]"), id)?;
    }
    let ids: Vec<&str> = from_ids.iter().map(|id| id.trim()).collect();
    let mut conn = db.pool().acquire().await?;
    let found = lookup(&mut conn, tenant, kind, from, &ids, to).await?;
    Ok(found.into_iter().collect())
}

/// The id in `to` linked to `from_id` in `from`.
pub async fn resolve(
    db: &Database,
    tenant: &TenantId,
    kind: i32,
    from: i32,
    from_id: &str,
    to: i32,
) -> Result<Option<String>, ServiceError> {
    let kind = Kind::from_proto("kind", kind)?;
    let (from, to) = (System::from_proto("from_system", from)?, System::from_proto("to_system", to)?);
    let from_id = ServiceError::require("from_id", from_id)?;
    if from == to {
        return Err(ServiceError::invalid("to_system", "must differ from from_system"));
    }
    counterpart(db.pool(), tenant, kind, (from, from_id), to).await
}

/// The stored form of a link, for answers.
pub fn answered(l: &EntityLink) -> EntityLink {
    EntityLink { create_time: Some(to_timestamp(now_millis())), ..l.clone() }
}
