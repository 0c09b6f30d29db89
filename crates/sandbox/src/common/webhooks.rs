//! Outbound webhooks as every sandbox sends them: the body signed once (HMAC-SHA256, lowercase
//! hex), posted in the background, retried with doubling waits on anything but a 2xx until the
//! attempts or the give-up time run out, always the same bytes (so the event id is stable), and
//! subject to the injected faults: dropped, duplicated or held back so later events overtake it.

use std::{sync::Arc, time::Duration};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Semaphore;

use super::{Clock, Faults, Reorder};

/// Lowercase hex HMAC-SHA256 of `body` under `secret`: the value after `sha256=` in the
/// signature headers of Bling, 360Envios and CPLUG.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// How one webhook is retried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts at most (at least one is made).
    pub attempts: u32,
    /// The first wait between attempts, in sandbox time; it doubles after each failure.
    pub backoff: Duration,
    /// Sandbox time after the first attempt past which no more are made.
    pub give_up: Duration,
    /// An answer not received within this counts as a failure.
    pub timeout: Duration,
}

impl Retry {
    /// One attempt, no retries (Bitrix24's events).
    pub fn once(timeout: Duration) -> Self {
        Self { attempts: 1, backoff: Duration::ZERO, give_up: Duration::ZERO, timeout }
    }
}

/// What one delivery attempt came to, as the sender reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first attempt of a copy.
    pub number: u32,
    /// The receiver's status; `None` when it could not be reached in time.
    pub status: Option<u16>,
    /// No attempt of this copy follows: it was delivered, or the retries ran out.
    pub last: bool,
}

impl Attempt {
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Deliveries a sandbox has in flight at most: a burst (a thousand sales rung up at once)
/// queues instead of opening a connection per webhook.
const IN_FLIGHT: usize = 32;

/// Sends a sandbox's webhooks; clone freely.
#[derive(Clone)]
pub struct Outbox {
    http: reqwest::Client,
    faults: Faults,
    reorder: Reorder,
    clock: Clock,
    slots: Arc<Semaphore>,
}

impl Outbox {
    pub fn new(faults: Faults, reorder: Reorder, clock: Clock) -> Self {
        Self { http: reqwest::Client::new(), faults, reorder, clock, slots: Arc::new(Semaphore::new(IN_FLIGHT)) }
    }

    /// Posts `body` with `headers` to `url` in the background, retried as `retry` says;
    /// `report` hears of every attempt. Returns how many copies go out: 0 when an injected
    /// fault dropped the webhook, 2 when it duplicated it.
    pub fn post(
        &self,
        url: &str,
        headers: Vec<(String, String)>,
        body: String,
        retry: Retry,
        report: impl Fn(Attempt) + Send + Sync + 'static,
    ) -> usize {
        let copies = self.faults.webhook_copies();
        let report = Arc::new(report);
        let (headers, body, url) = (Arc::new(headers), Arc::new(body), Arc::new(url.to_owned()));
        for _ in 0..copies {
            let me = self.clone();
            let (url, headers, body, report) = (url.clone(), headers.clone(), body.clone(), report.clone());
            let hold = self.faults.webhook_hold().max(self.reorder.hold());
            tokio::spawn(async move {
                // A held webhook lets later ones overtake it (an injected reorder).
                tokio::time::sleep(hold).await;
                let started = me.clock.now();
                let give_up = chrono::Duration::from_std(retry.give_up).unwrap_or(chrono::Duration::MAX);
                let mut wait = retry.backoff;
                let attempts = retry.attempts.max(1);
                for number in 1..=attempts {
                    let mut req = me.http.post(url.as_str()).timeout(retry.timeout).body(body.as_str().to_owned());
                    for (k, v) in headers.iter() {
                        req = req.header(k.as_str(), v.as_str());
                    }
                    let status = {
                        let _slot = me.slots.acquire().await;
                        req.send().await.ok().map(|r| r.status().as_u16())
                    };
                    let out_of_time = me.clock.now() - started >= give_up;
                    let mut attempt = Attempt { number, status, last: number == attempts || out_of_time };
                    attempt.last |= attempt.delivered();
                    report(attempt);
                    if attempt.last {
                        return;
                    }
                    tokio::time::sleep(me.clock.real(wait)).await;
                    wait = wait.saturating_mul(2);
                }
            });
        }
        copies
    }

    /// Posts a JSON `body` signed `<signature_header>: sha256=<hex HMAC-SHA256(secret, body)>`,
    /// as [`Outbox::post`] does.
    pub fn post_signed_json(
        &self,
        url: &str,
        signature_header: &str,
        secret: &str,
        body: String,
        retry: Retry,
        report: impl Fn(Attempt) + Send + Sync + 'static,
    ) -> usize {
        let headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            (signature_header.to_owned(), format!("sha256={}", sign(secret, body.as_bytes()))),
        ];
        self.post(url, headers, body, retry, report)
    }
}
