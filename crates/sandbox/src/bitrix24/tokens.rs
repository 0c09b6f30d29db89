//! The portal's OAuth 2.0 server for apps: authorization codes that live 30 s, access tokens
//! that live an hour, and refresh tokens that are single use: a refresh returns a new pair and
//! retires the old refresh token and the access token issued with it.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

/// How long an authorization code can be exchanged.
pub const CODE_TTL: Duration = Duration::seconds(30);

/// Why the token server refused a grant, as `{"error","error_description"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantError {
    pub code: &'static str,
    pub description: &'static str,
    /// The refresh token was valid once and has been used already.
    pub reused: bool,
}

impl GrantError {
    fn invalid(description: &'static str) -> Self {
        Self { code: "invalid_grant", description, reused: false }
    }
}

/// Why a REST call's `auth` was refused (HTTP 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessError {
    /// No `auth` at all.
    Missing,
    /// Unknown, or retired by a later refresh.
    Invalid,
    Expired,
}

/// A freshly issued token pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub access_token: String,
    pub refresh_token: String,
    pub expires: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Access {
    expires: DateTime<Utc>,
    family: u64,
}

#[derive(Debug, Clone)]
struct Refresh {
    expires: DateTime<Utc>,
    family: u64,
    used: bool,
}

/// Every token the portal has issued. One family per installation (authorization code); a
/// family has one live refresh token and one live access token at a time.
#[derive(Debug, Default)]
pub struct Tokens {
    codes: BTreeMap<String, DateTime<Utc>>,
    access: BTreeMap<String, Access>,
    refresh: BTreeMap<String, Refresh>,
    /// Family → its live access token.
    live_access: BTreeMap<u64, String>,
    next_family: u64,
}

fn random_token() -> String {
    let token = hex::encode(rand::random::<[u8; 16]>());
    crate::common::scan::record([&token]);
    token
}

impl Tokens {
    /// A code the consent page hands to the app's redirect.
    pub fn issue_code(&mut self, now: DateTime<Utc>) -> String {
        let code = random_token();
        self.codes.insert(code.clone(), now + CODE_TTL);
        code
    }

    /// `grant_type=authorization_code`: a new family. A code works once.
    pub fn exchange_code(
        &mut self,
        code: &str,
        now: DateTime<Utc>,
        access_ttl: Duration,
        refresh_ttl: Duration,
    ) -> Result<Grant, GrantError> {
        match self.codes.remove(code) {
            Some(expires) if expires > now => {}
            Some(_) => return Err(GrantError::invalid("Authorization code has expired")),
            None => return Err(GrantError::invalid("Invalid authorization code")),
        }
        Ok(self.mint(now, access_ttl, refresh_ttl))
    }

    /// A new family without a code: what an installation hands over (`ONAPPINSTALL`).
    pub fn mint(&mut self, now: DateTime<Utc>, access_ttl: Duration, refresh_ttl: Duration) -> Grant {
        self.next_family += 1;
        self.issue(self.next_family, now, access_ttl, refresh_ttl)
    }

    fn issue(&mut self, family: u64, now: DateTime<Utc>, access_ttl: Duration, refresh_ttl: Duration) -> Grant {
        let grant = Grant { access_token: random_token(), refresh_token: random_token(), expires: now + access_ttl };
        if let Some(old) = self.live_access.insert(family, grant.access_token.clone()) {
            self.access.remove(&old);
        }
        self.access.insert(grant.access_token.clone(), Access { expires: grant.expires, family });
        self.refresh.insert(grant.refresh_token.clone(), Refresh { expires: now + refresh_ttl, family, used: false });
        grant
    }

    /// `grant_type=refresh_token`: a new pair; the old refresh token and its access token stop
    /// working.
    pub fn refresh(
        &mut self,
        token: &str,
        now: DateTime<Utc>,
        access_ttl: Duration,
        refresh_ttl: Duration,
    ) -> Result<Grant, GrantError> {
        let Some(r) = self.refresh.get_mut(token) else {
            return Err(GrantError::invalid("Invalid refresh token"));
        };
        if r.used {
            return Err(GrantError { reused: true, ..GrantError::invalid("Refresh token has already been used") });
        }
        if r.expires <= now {
            return Err(GrantError::invalid("Refresh token has expired"));
        }
        r.used = true;
        let family = r.family;
        Ok(self.issue(family, now, access_ttl, refresh_ttl))
    }

    /// Checks a REST call's `auth`.
    pub fn check(&self, token: Option<&str>, now: DateTime<Utc>) -> Result<(), AccessError> {
        let token = token.filter(|t| !t.is_empty()).ok_or(AccessError::Missing)?;
        let a = self.access.get(token).ok_or(AccessError::Invalid)?;
        if self.live_access.get(&a.family).map(String::as_str) != Some(token) {
            return Err(AccessError::Invalid);
        }
        if a.expires <= now { Err(AccessError::Expired) } else { Ok(()) }
    }

    /// The refresh tokens that still work.
    pub fn live_refresh_tokens(&self) -> usize {
        self.refresh.values().filter(|r| !r.used).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_retires_the_old_pair() {
        let mut t = Tokens::default();
        let now = Utc::now();
        let (hour, days) = (Duration::hours(1), Duration::days(180));
        let code = t.issue_code(now);
        let g1 = t.exchange_code(&code, now, hour, days).unwrap();
        assert!(t.exchange_code(&code, now, hour, days).is_err(), "a code works once");
        assert_eq!(t.check(Some(&g1.access_token), now), Ok(()));
        assert_eq!(t.check(Some(&g1.access_token), now + hour), Err(AccessError::Expired));
        let g2 = t.refresh(&g1.refresh_token, now, hour, days).unwrap();
        assert_eq!(t.check(Some(&g1.access_token), now), Err(AccessError::Invalid));
        assert_eq!(t.check(Some(&g2.access_token), now), Ok(()));
        let again = t.refresh(&g1.refresh_token, now, hour, days).unwrap_err();
        assert!(again.reused && again.code == "invalid_grant");
        let late = t.issue_code(now);
        assert!(t.exchange_code(&late, now + CODE_TTL, hour, days).is_err(), "codes live 30 s");
    }
}
