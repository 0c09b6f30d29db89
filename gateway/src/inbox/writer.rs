//! The inbox writer, a group commit: requests hand their rows to a queue, and a writer task
//! commits everything that queued up while the previous commit ran in one transaction. Each
//! request is answered only after the transaction holding its row committed, so every
//! acknowledged event is durable, while one `fsync` is shared by many events.

use std::{sync::Arc, time::Duration};

use ponte_core::db::Database;
use tokio::{
    sync::{Mutex, mpsc, oneshot},
    task::JoinHandle,
};

use super::{
    rows::NewEvent,
    state::EventState,
    store::{Stored, commit},
};
use crate::{metrics, wake::Wake};

/// How long a request waits for its commit before answering 503 (Bling gives up at 5 s).
pub const STORE_TIMEOUT: Duration = Duration::from_secs(4);

/// The most events one transaction commits.
const MAX_BATCH: usize = 64;

/// Storing failed; nothing of this request is committed (or, if the commit's answer was
/// lost, the sender's retry finds the row and is answered as a duplicate).
#[derive(Debug, Clone)]
pub struct StoreError(pub String);

struct Job {
    event: NewEvent,
    reply: oneshot::Sender<Result<Stored, StoreError>>,
}

/// Hands rows to the writer tasks; clone freely.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts `tasks` writer tasks, which wake `wake` when they commit work to deliver. While one
    /// commits, the next collects what arrives, so commits overlap with the next batch's collection.
    /// They end once every [`Writer`] is dropped and what was handed to them is committed.
    pub fn spawn(db: Database, tasks: usize, wake: Wake, handles: &mut Vec<JoinHandle<()>>) -> Self {
        let (queue, rx) = mpsc::channel::<Job>(MAX_BATCH * 64);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..tasks.max(1) {
            let (db, rx, wake) = (db.clone(), rx.clone(), wake.clone());
            handles.push(tokio::spawn(async move { run(db, rx, wake).await }));
        }
        Self { queue }
    }

    /// Stores `event`; answers once its transaction committed (or failed).
    pub async fn store(&self, event: NewEvent) -> Result<Stored, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Job { event, reply }).await.map_err(|_| StoreError("the inbox writer stopped".into()))?;
        answer.await.unwrap_or_else(|_| Err(StoreError("the inbox writer stopped".into())))
    }
}

async fn run(db: Database, rx: Arc<Mutex<mpsc::Receiver<Job>>>, wake: Wake) {
    loop {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(job) => batch.push(job),
                None => return,
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        metrics::get().commit_batch.observe(batch.len() as f64);
        let events: Vec<&NewEvent> = batch.iter().map(|j| &j.event).collect();
        let started = std::time::Instant::now();
        let committed = commit(&db, &events).await;
        metrics::get().commit_seconds.observe(started.elapsed().as_secs_f64());
        let results = match committed {
            Ok(r) => r.into_iter().map(Ok).collect(),
            // A row the database refuses must not fail the others that shared its batch:
            // each is tried alone before anyone is told it failed.
            Err(e) if batch.len() > 1 && matches!(e, sqlx::Error::Database(_)) => {
                tracing::warn!(error = %e, size = batch.len(), "inbox batch refused; committing its events one by one");
                let mut out = Vec::with_capacity(batch.len());
                for ev in &events {
                    out.push(commit(&db, &[*ev]).await.map(|r| r[0]).map_err(store_error));
                }
                out
            }
            Err(e) => {
                let err = store_error(e);
                batch.iter().map(|_| Err(err.clone())).collect::<Vec<_>>()
            }
        };
        let work = events.iter().zip(&results).any(|(e, r)| {
            matches!(r, Ok(Stored::Inserted)) && !matches!(e.state, EventState::Dead | EventState::Ignored)
        });
        for (job, r) in batch.into_iter().zip(results) {
            let _ = job.reply.send(r);
        }
        if work {
            wake.committed();
        }
    }
}

fn store_error(e: sqlx::Error) -> StoreError {
    tracing::error!(error = %e, "storing webhook events failed");
    StoreError("the inbox could not store the event".into())
}
