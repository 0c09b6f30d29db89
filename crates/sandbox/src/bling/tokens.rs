//! The grants, codes and tokens an account has issued, and the token endpoint's IP window:
//! what the OAuth routes write and the bearer gate reads.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::common::Window;

pub struct Grant {
    pub refresh_token: String,
    pub revoked: bool,
}

pub struct Code {
    pub grant: usize,
    pub issued: DateTime<Utc>,
    pub used: bool,
}

pub struct Access {
    pub grant: usize,
    pub expires: DateTime<Utc>,
}

/// Why an access token is refused.
pub enum Refused {
    Unknown,
    Expired,
}

/// Every grant, code and token the account has issued, and the token endpoint's IP window.
#[derive(Default)]
pub struct Auth {
    pub deny_next: bool,
    pub grants: Vec<Grant>,
    pub codes: HashMap<String, Code>,
    pub access: HashMap<String, Access>,
    /// Refresh tokens that were valid once and were rotated out.
    pub retired_refresh: HashMap<String, usize>,
    pub token_calls: Window,
    pub blocked_until: Option<DateTime<Utc>>,
}

impl Auth {
    pub fn revoke_all(&mut self) {
        for g in &mut self.grants {
            g.revoked = true;
        }
    }

    /// Whether `token` is a live access token at `now`.
    pub fn check(&self, token: &str, now: DateTime<Utc>) -> Result<(), Refused> {
        match self.access.get(token) {
            None => Err(Refused::Unknown),
            Some(a) if a.expires < now || self.grants[a.grant].revoked => Err(Refused::Expired),
            Some(_) => Ok(()),
        }
    }
}
