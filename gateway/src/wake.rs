//! How a gateway's dispatcher learns that there is work: a [`Wake`] made once per gateway and
//! handed to its inbox writer, its operator API (replays) and its dispatcher, plus PostgreSQL
//! `NOTIFY`/`LISTEN` between gateways. A notification carries the origin of the gateway that
//! sent it; a gateway's listener skips its own, as its dispatcher was woken in-process already.

use std::{sync::Arc, time::Duration};

use ponte_core::db::{Backend, Database};
use sqlx::AnyConnection;
use tokio::{sync::Notify, task::JoinHandle};

/// One gateway's wake-up; clone freely.
#[derive(Clone)]
pub struct Wake(Arc<Inner>);

struct Inner {
    /// This gateway's dispatcher waits on it.
    dispatcher: Notify,
    /// The notifier task waits on it (see [`Wake::spawn_notifier`]).
    notifier: Notify,
    origin: String,
}

impl Default for Wake {
    fn default() -> Self {
        Self::new()
    }
}

impl Wake {
    pub fn new() -> Self {
        Self(Arc::new(Inner {
            dispatcher: Notify::new(),
            notifier: Notify::new(),
            origin: uuid::Uuid::new_v4().to_string(),
        }))
    }

    /// This gateway on the notifications it sends (their payload).
    pub fn origin(&self) -> &str {
        &self.0.origin
    }

    /// The channel the gateways of one database notify each other on.
    pub fn channel(db: &Database) -> String {
        format!("ponte_inbox_{}", db.schema())
    }

    /// Wakes this gateway's dispatcher (a wake while it is busy is kept for its next wait).
    pub fn wake_dispatcher(&self) {
        self.0.dispatcher.notify_one();
    }

    /// Waits for [`Wake::wake_dispatcher`].
    pub async fn wait(&self) {
        self.0.dispatcher.notified().await;
    }

    /// Rows to deliver were committed: wakes this gateway's dispatcher, and the other gateways
    /// through the notifier.
    pub fn committed(&self) {
        self.wake_dispatcher();
        self.0.notifier.notify_one();
    }

    /// Tells the other gateways (PostgreSQL) that there is work, delivered when `conn`'s
    /// transaction commits.
    pub async fn notify_on_commit(&self, conn: &mut AnyConnection, db: &Database) -> Result<(), sqlx::Error> {
        if db.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)").bind(Self::channel(db)).bind(self.origin()).execute(conn).await?;
        }
        Ok(())
    }

    /// Starts the task that tells the other gateways (PostgreSQL `NOTIFY`) about what
    /// [`Wake::committed`] reports: outside the writers' statements, because a transaction that
    /// notifies holds a global lock through its commit (which would stop commits from sharing a
    /// flush), and at most once per few milliseconds however many batches committed meanwhile.
    pub fn spawn_notifier(&self, db: Database) -> Option<JoinHandle<()>> {
        if db.backend() != Backend::Postgres {
            return None;
        }
        let wake = self.clone();
        Some(tokio::spawn(async move {
            let channel = Self::channel(&db);
            loop {
                wake.0.notifier.notified().await;
                let sent =
                    sqlx::query("SELECT pg_notify($1, $2)").bind(&channel).bind(wake.origin()).execute(db.pool()).await;
                if let Err(e) = sent {
                    tracing::warn!(error = %e, "could not notify the other replicas; their poll will find the work");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }))
    }

    /// Wakes this gateway's dispatcher whenever another gateway commits work (PostgreSQL
    /// `LISTEN`); runs until dropped.
    pub async fn listen(self, db: Database) {
        let url = db.pool().connect_options().database_url.to_string();
        let channel = Self::channel(&db);
        loop {
            match sqlx::postgres::PgListener::connect(&url).await {
                Ok(mut listener) => match listener.listen(&channel).await {
                    Ok(()) => loop {
                        match listener.recv().await {
                            Ok(n) if n.payload() == self.origin() => {}
                            Ok(_) => self.wake_dispatcher(),
                            Err(e) => {
                                tracing::warn!(error = %e, "inbox notifications interrupted; reconnecting");
                                break;
                            }
                        }
                    },
                    Err(e) => tracing::warn!(error = %e, "cannot LISTEN for inbox notifications"),
                },
                Err(e) => tracing::warn!(error = %e, "cannot connect for inbox notifications"),
            }
            // The poll still finds the work meanwhile.
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.wake_dispatcher();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_reaches_its_own_gateway_only() {
        let (mine, other) = (Wake::new(), Wake::new());
        assert_ne!(mine.origin(), other.origin());
        mine.committed();
        // The wake is kept for the next wait of this gateway's dispatcher, and for no other.
        tokio::time::timeout(Duration::from_secs(5), mine.wait()).await.expect("woken");
        assert!(tokio::time::timeout(Duration::from_millis(50), other.wait()).await.is_err());
    }
}
