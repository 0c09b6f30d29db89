//! Work a service does besides answering calls (sales workers and their scanner, backfill
//! runners), and how its process stops it on SIGTERM: [`Background::stop`] tells every task to
//! wrap up (finish the step in hand, record it, hand back its lease at once rather than leave it
//! to expire), and [`Background::wait`] waits for them, which the process bounds by
//! `PONTE_SHUTDOWN_GRACE_SECONDS`.
//!
//! Built on tokio-util's `CancellationToken` (a stop signal every clone sees, also when it
//! starts waiting after the fact) and `TaskTracker` (waits for tasks without holding their
//! results, unlike a `JoinSet`), both maintained with tokio itself.

use std::future::Future;

use tokio_util::{
    sync::CancellationToken,
    task::{TaskTracker, task_tracker::TrackedFuture},
};

/// The background work of one process; clones share it.
#[derive(Clone, Default)]
pub struct Background {
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Background {
    /// Runs `task` as background work the process waits for when it stops.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tasks.spawn(task)
    }

    /// `task`, counted as background work the process waits for (for tasks kept in a service's
    /// own `JoinSet`, e.g. to abort them when the service is dropped).
    pub fn track<F: Future>(&self, task: F) -> TrackedFuture<F> {
        self.tasks.track_future(task)
    }

    /// Whether the process is stopping: take no new work, wrap up the step in hand.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Completes when the process starts stopping.
    pub async fn stopping(&self) {
        self.stop.cancelled().await;
    }

    /// Tells every task to wrap up; no task is expected to start after.
    pub fn stop(&self) {
        self.stop.cancel();
        self.tasks.close();
    }

    /// Completes when every task has ended (after [`Background::stop`]).
    pub async fn wait(&self) {
        self.tasks.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn stop_lets_tasks_wrap_up_and_wait_sees_them_end() {
        let bg = Background::default();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let me = bg.clone();
        bg.spawn(async move {
            me.stopping().await;
            // The step in hand is finished after the signal.
            tokio::time::sleep(Duration::from_millis(50)).await;
            tx.send("wrapped up").unwrap();
        });
        let tracked = bg.track(async { 7 });
        assert!(!bg.is_stopping());
        bg.stop();
        assert!(bg.is_stopping());
        assert_eq!(tracked.await, 7);
        tokio::time::timeout(Duration::from_secs(5), bg.wait()).await.expect("every task ended");
        assert_eq!(rx.recv().await, Some("wrapped up"));
    }

    #[tokio::test]
    async fn wait_does_not_end_while_a_task_runs() {
        let bg = Background::default();
        bg.spawn(std::future::pending::<()>());
        bg.stop();
        assert!(tokio::time::timeout(Duration::from_millis(100), bg.wait()).await.is_err());
    }
}
