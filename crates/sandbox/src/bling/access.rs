//! Who may call the API and how often: the bearer token of every request under `/Api/v3`
//! (a missing or malformed `Authorization` is `invalid_request`, an unknown token or an expired
//! one `invalid_token`), then the account's limits of 3 requests a second and 120,000 a day,
//! answered with the documented 429 bodies and no `Retry-After`.

use axum::{
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::Response,
};

use super::{
    errors::{error, too_many},
    store::Bling,
    tokens::Refused,
};

/// Runs before every API route.
pub async fn gate(State(b): State<Bling>, req: Request, next: Next) -> Response {
    match check(&b, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(refused) => refused,
    }
}

fn check(b: &Bling, headers: &HeaderMap) -> Result<(), Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "invalid_request", "invalid_request", "Malformed auth header"))?;
    let now = b.now();
    let second = b.window(1_000.0);
    let mut inner = b.inner.lock();
    let invalid = |description: &str| error(StatusCode::UNAUTHORIZED, "invalid_token", "invalid_token", description);
    match inner.auth.check(token, now) {
        Ok(()) => {}
        Err(Refused::Unknown) => return Err(invalid("The access token provided is invalid")),
        Err(Refused::Expired) => return Err(invalid("The access token provided has expired")),
    }
    inner.stats.api_requests += 1;
    let day = now.timestamp().div_euclid(86_400);
    if inner.day.0 != day {
        inner.day = (day, 0);
    }
    if inner.day.1 >= b.config.daily {
        inner.stats.rate_limited += 1;
        return Err(too_many(
            b.config.daily,
            "day",
            "O limite de requisições por dia foi atingido, tente novamente amanhã.",
        ));
    }
    if inner.requests.admit(now, b.config.per_second, second).is_err() {
        inner.stats.rate_limited += 1;
        return Err(too_many(
            b.config.per_second as u64,
            "second",
            "O limite de requisições por segundo foi atingido, tente novamente mais tarde.",
        ));
    }
    inner.day.1 += 1;
    Ok(())
}
