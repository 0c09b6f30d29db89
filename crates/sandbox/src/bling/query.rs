//! Query strings as Bling reads them: repeated `name[]=v` values, integer parameters (one or a
//! list) refused with a `VALIDATION_ERROR` naming them when a value is not an integer (never
//! silently dropped, which would widen the filter), dates as `YYYY-MM-DD`, and pages (`pagina`
//! from 1, `limite` from 1, clamped to 100).

use axum::{extract::FromRequestParts, http::request::Parts, response::Response};
use chrono::NaiveDate;
use serde_json::Value;

use super::errors::{field, validation};

/// The pairs of a request's query string.
pub struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or_default();
        Ok(Params(url::form_urlencoded::parse(raw.as_bytes()).into_owned().collect()))
    }
}

/// A parameter's name as error messages give it (`idsProdutos[]` → `idsProdutos`).
fn element(name: &str) -> &str {
    name.trim_end_matches("[]")
}

fn not_an_integer(name: &str) -> Response {
    let msg = format!("O parâmetro {} deve conter apenas números inteiros", element(name));
    validation(vec![field(1, element(name), &msg)])
}

impl Params {
    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    pub fn one(&self, name: &str) -> Option<&str> {
        self.all(name).into_iter().next()
    }

    /// Every value of `name` as an integer.
    pub fn ints(&self, name: &str) -> Result<Vec<i64>, Response> {
        self.all(name).iter().map(|v| v.trim().parse::<i64>().map_err(|_| not_an_integer(name))).collect()
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, Response> {
        self.one(name).map(|v| v.trim().parse::<i64>().map_err(|_| not_an_integer(name))).transpose()
    }

    /// An integer parameter that must be one of `allowed`, or its default.
    pub fn choice(&self, name: &str, allowed: &[i64], default: i64) -> Result<i64, Response> {
        let v = self.int(name)?.unwrap_or(default);
        if allowed.contains(&v) {
            return Ok(v);
        }
        let msg = format!("O parâmetro {name} deve ser um dos valores {allowed:?}");
        Err(validation(vec![field(1, name, &msg)]))
    }

    /// A `YYYY-MM-DD` parameter.
    pub fn date(&self, name: &str) -> Result<Option<NaiveDate>, Response> {
        self.one(name)
            .map(|v| {
                NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").map_err(|_| {
                    validation(vec![field(1, name, &format!("O parâmetro {name} deve ser uma data (AAAA-MM-DD)"))])
                })
            })
            .transpose()
    }

    /// The page `pagina` and `limite` ask for.
    pub fn page(&self, items: Vec<Value>) -> Result<Vec<Value>, Response> {
        let pagina = self.int("pagina")?.unwrap_or(1);
        let limite = self.int("limite")?.unwrap_or(100);
        if pagina < 1 || limite < 1 {
            let element = if pagina < 1 { "pagina" } else { "limite" };
            return Err(validation(vec![field(1, element, "Parâmetros de paginação inválidos")]));
        }
        let limite = limite.min(100) as usize;
        let skip = usize::try_from(pagina - 1).unwrap_or(usize::MAX).saturating_mul(limite);
        Ok(items.into_iter().skip(skip).take(limite).collect())
    }
}
