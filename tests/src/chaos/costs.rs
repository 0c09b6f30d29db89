//! A quiet chaos run's costs: CPU of each `ponte serve` process (replicas of a service summed), of
//! the private PostgreSQL server (postmaster, backends and workers) and of the private Redis,
//! read before the workload and after the mesh drained, with the events stored and delivered in
//! between. The sandboxes, the balancers and the workload run in this process and are not counted.

use std::{collections::BTreeMap, time::Instant};

use crate::{
    costs::{Costs, pid_where, table_sizes, tree_cpu_seconds},
    procs::{PrivatePostgres, PrivateRedis, ProcessMesh},
};

pub struct Sample {
    at: Instant,
    cpu: BTreeMap<String, f64>,
    events: BTreeMap<String, i64>,
    deliveries: BTreeMap<String, i64>,
}

async fn counts(db: &ponte_core::db::Database, sql: &str) -> anyhow::Result<BTreeMap<String, i64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned())).fetch_all(db.pool()).await?;
    Ok(rows.into_iter().collect())
}

pub async fn sample(mesh: &ProcessMesh, pg: &PrivatePostgres, redis: &PrivateRedis) -> anyhow::Result<Sample> {
    let db = mesh.db("gateway").await;
    let events = counts(&db, "SELECT source, COUNT(*) FROM inbox_events GROUP BY source").await?;
    let deliveries = counts(
        &db,
        "SELECT subscriber, COUNT(*) FROM inbox_deliveries WHERE state NOT IN ('pending', 'in_flight') \
         GROUP BY subscriber",
    )
    .await?;
    db.pool().close().await;
    let mut cpu = BTreeMap::new();
    for p in &mesh.procs {
        let pid = p.child.id().unwrap_or_default();
        *cpu.entry(p.service.to_owned()).or_default() += tree_cpu_seconds(pid);
    }
    // The postmaster: `postgres -D … -p <port> …`; redis-server retitles itself `redis-server
    // 127.0.0.1:<port>`.
    let port = pg.port.to_string();
    let postmaster =
        pid_where(|a| a.windows(2).any(|w| w == ["-p", &port])).ok_or_else(|| anyhow::anyhow!("no postmaster"))?;
    cpu.insert("postgres".to_owned(), tree_cpu_seconds(postmaster));
    let title = format!("127.0.0.1:{}", redis.port);
    let redis = pid_where(|a| a[0].starts_with("redis-server") && a.iter().any(|s| s.contains(&title)))
        .ok_or_else(|| anyhow::anyhow!("no redis-server"))?;
    cpu.insert("redis".to_owned(), tree_cpu_seconds(redis));
    Ok(Sample { at: Instant::now(), cpu, events, deliveries })
}

/// Waits (bounded by `within`) until no inbox delivery is queued or in flight, with one
/// connection.
pub async fn settle(mesh: &ProcessMesh, within: std::time::Duration) -> anyhow::Result<()> {
    let db = mesh.db("gateway").await;
    let began = Instant::now();
    let queued = "SELECT COUNT(*) FROM inbox_deliveries WHERE state IN ('pending', 'in_flight')";
    while began.elapsed() < within && sqlx::query_scalar::<_, i64>(queued).fetch_one(db.pool()).await? > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    db.pool().close().await;
    Ok(())
}

fn minus(after: &BTreeMap<String, i64>, before: &BTreeMap<String, i64>) -> BTreeMap<String, i64> {
    after.iter().map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or_default())).collect()
}

impl Sample {
    /// What was spent from `before` to this sample, with the tables of the database at `url`.
    pub async fn since(&self, before: &Sample, url: &str) -> anyhow::Result<Costs> {
        Ok(Costs {
            seconds: (self.at - before.at).as_secs_f64(),
            events: minus(&self.events, &before.events),
            deliveries: minus(&self.deliveries, &before.deliveries),
            cpu_seconds: self
                .cpu
                .iter()
                .map(|(k, v)| (k.clone(), v - before.cpu.get(k).copied().unwrap_or_default()))
                .collect(),
            tables: table_sizes(url).await?,
        })
    }
}
