//! What a run cost, for the capacity plan (docs/capacity.md): CPU time of processes read from
//! `/proc/<pid>/stat`, and the bytes each table's row takes in PostgreSQL.

use std::collections::BTreeMap;

use serde::Serialize;

/// USER_HZ on Linux: the unit of `/proc/<pid>/stat`'s times.
const TICKS: f64 = 100.0;

/// `(comm, ppid, CPU seconds)` of process `pid`: user + system time, with that of its children
/// that ended and were reaped (PostgreSQL's backends come and go: the postmaster holds the time
/// of those it reaped), so that the figure only grows.
fn stat(pid: u32) -> Option<(String, u32, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = stat.rsplit_once(") ")?;
    let comm = head.split_once(" (").map_or("", |(_, c)| c).to_owned();
    // After the state field: ppid is the 2nd; utime, stime, cutime and cstime the 12th to 15th.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let cpu = (11..15).filter_map(|i| fields.get(i).and_then(|f| f.parse::<f64>().ok())).sum::<f64>() / TICKS;
    Some((comm, ppid, cpu))
}

fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()))
}

/// CPU seconds of every process whose `(comm, pid)` `pred` accepts (see [`stat`]).
pub fn cpu_seconds(pred: impl Fn(&str, u32) -> bool) -> f64 {
    pids().filter_map(|pid| stat(pid).filter(|(comm, ..)| pred(comm, pid))).map(|(.., cpu)| cpu).sum()
}

/// CPU seconds of process `root` and of its children (a PostgreSQL server: the postmaster and
/// its backends and workers).
pub fn tree_cpu_seconds(root: u32) -> f64 {
    pids().filter_map(|pid| stat(pid).filter(|(_, ppid, _)| pid == root || *ppid == root)).map(|(.., cpu)| cpu).sum()
}

/// The first process whose arguments (`/proc/<pid>/cmdline`, split at NULs) `pred` accepts.
pub fn pid_where(pred: impl Fn(&[&str]) -> bool) -> Option<u32> {
    pids().find(|pid| {
        let Ok(cmdline) = std::fs::read_to_string(format!("/proc/{pid}/cmdline")) else { return false };
        pred(&cmdline.split('\0').collect::<Vec<_>>())
    })
}

/// One table's size: rows and bytes with its indexes and TOAST.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableSize {
    pub table: String,
    pub rows: i64,
    pub bytes: i64,
}

/// Every table of ponte's schemas in the database at `url` that holds rows.
pub async fn table_sizes(url: &str) -> anyhow::Result<Vec<TableSize>> {
    let db = ponte_core::db::Database::connect(url, "public", 1, std::time::Duration::from_secs(5)).await?;
    let tables: Vec<(String, i64)> = sqlx::query_as(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), pg_total_relation_size(c.oid) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'public') \
           AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1",
    )
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::new();
    for (table, bytes) in tables {
        let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(db.pool())
            .await?;
        if rows > 0 {
            out.push(TableSize { table, rows, bytes });
        }
    }
    Ok(out)
}

/// What a run of the whole mesh cost: CPU per process group and the work it did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Costs {
    pub seconds: f64,
    /// Inbox events stored during the measurement, by source.
    pub events: BTreeMap<String, i64>,
    /// Deliveries settled during the measurement, by subscribing service.
    pub deliveries: BTreeMap<String, i64>,
    /// CPU seconds by service (its replicas summed), `postgres` and `redis`.
    pub cpu_seconds: BTreeMap<String, f64>,
    /// The tables at the end of the run.
    pub tables: Vec<TableSize>,
}

impl Costs {
    /// The stored events a process group's CPU is divided by: a subscribing service's own
    /// deliveries; every stored event for the gateway, the services others call, PostgreSQL and
    /// Redis.
    fn handled(&self, group: &str) -> i64 {
        self.deliveries.get(group).copied().unwrap_or_else(|| self.events.values().sum())
    }

    /// A Markdown table: CPU per stored event and per event the process handled.
    pub fn table(&self) -> String {
        let stored: i64 = self.events.values().sum();
        let mut out = format!(
            "{stored} events stored in {:.1} s ({:?}); deliveries {:?}\n\
             | process | CPU s | cores | ms per stored event | events handled | ms per handled event |\n\
             |---|---|---|---|---|---|\n",
            self.seconds, self.events, self.deliveries
        );
        for (group, cpu) in &self.cpu_seconds {
            let handled = self.handled(group);
            out += &format!(
                "| {group} | {cpu:.2} | {:.3} | {:.3} | {handled} | {:.3} |\n",
                cpu / self.seconds.max(0.001),
                1000.0 * cpu / stored.max(1) as f64,
                1000.0 * cpu / handled.max(1) as f64,
            );
        }
        out += "| table | rows | MB with indexes | bytes per row |\n|---|---|---|---|\n";
        for t in &self.tables {
            out += &format!(
                "| {} | {} | {:.2} | {:.0} |\n",
                t.table,
                t.rows,
                t.bytes as f64 / 1e6,
                t.bytes as f64 / t.rows.max(1) as f64
            );
        }
        out
    }
}
