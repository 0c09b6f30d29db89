//! The console's page frame: the language (`Lang::pick`), escaping, the HTML document, the
//! answer type [`Page`] (a service's refusal as a readable 4xx/5xx, never a 500), and the
//! headers every answer carries.

use std::{collections::HashMap, fmt::Write as _};

use axum::{
    extract::FromRequestParts,
    http::{HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use tonic::Code;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// The headers every console answer carries.
pub(super) async fn secure_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The page's language: `?lang=en|pt`, else the browser's first preference, else pt-BR.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Lang {
    Pt,
    En,
}

impl Lang {
    pub fn pick(self, pt: &'static str, en: &'static str) -> &'static str {
        if self == Lang::En { en } else { pt }
    }

    fn code(self) -> &'static str {
        self.pick("pt-BR", "en")
    }

    /// The query suffix that keeps the language on links (`lang=en`), empty for the default.
    pub fn q(self) -> &'static str {
        self.pick("", "lang=en")
    }

    /// `&lang=en` to append to a link that has a query already, empty for the default.
    pub fn amp(self) -> &'static str {
        self.pick("", "&lang=en")
    }

    /// The hidden field that keeps the language on a GET form.
    pub fn get_field(self) -> &'static str {
        self.pick("", "<input type=\"hidden\" name=\"lang\" value=\"en\">")
    }

    /// The language a form asks for (its hidden `lang` field).
    pub fn of_form(form: &HashMap<String, String>) -> Option<Lang> {
        match form.get("lang").map(String::as_str) {
            Some("en") => Some(Lang::En),
            Some("pt") => Some(Lang::Pt),
            _ => None,
        }
    }

    /// The redirect to the login page.
    pub fn to_login(self) -> Response {
        Redirect::to(&format!("/console/login?{}", self.q())).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        for pair in query.split('&') {
            match pair {
                "lang=en" => return Ok(Lang::En),
                "lang=pt" | "lang=pt-BR" => return Ok(Lang::Pt),
                _ => {}
            }
        }
        let accept = parts.headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let first = accept.split(',').next().unwrap_or("").trim().to_ascii_lowercase();
        Ok(if first.starts_with("en") { Lang::En } else { Lang::Pt })
    }
}

/// HTML-escapes text for an element or an attribute.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value.
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~:".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A timestamp as UTC text.
pub(crate) fn when(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "—".into())
}

/// An enum value's proto name without its prefix (`CONNECTION_STATE_CONNECTED` → `CONNECTED`).
pub(crate) fn short(name: Option<&'static str>, prefix: &str) -> &'static str {
    name.map_or("?", |n| n.strip_prefix(prefix).unwrap_or(n))
}

/// A whole answer: an HTML page or an error page, with its status.
pub(crate) struct Page {
    pub status: StatusCode,
    pub html: String,
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        (self.status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], self.html).into_response()
    }
}

pub(super) fn document(lang: Lang, title: &str, nav: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{code}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · ponte</title><link rel=\"stylesheet\" href=\"/console/static/console.css\">\
         <script src=\"/console/static/console.js\" defer></script></head><body>\
         <header><a class=\"brand\" href=\"/console?{q}\">ponte</a>{nav}</header><main id=\"main\"><h1>{title}</h1>{body}</main></body></html>",
        code = lang.code(),
        title = esc(title),
        q = lang.q(),
    )
}

impl Page {
    pub fn ok(lang: Lang, title: &str, nav: &str, body: &str) -> Self {
        Self { status: StatusCode::OK, html: document(lang, title, nav, body) }
    }

    pub fn error(lang: Lang, status: StatusCode, message: &str) -> Self {
        let body = format!(
            "<p role=\"alert\" class=\"error\">{}</p><p><a href=\"/console?{}\">{}</a></p>",
            esc(message),
            lang.q(),
            lang.pick("Voltar ao início", "Back to the start")
        );
        let title = match status {
            StatusCode::FORBIDDEN => lang.pick("Acesso negado", "Forbidden"),
            StatusCode::NOT_FOUND => lang.pick("Não encontrado", "Not found"),
            s if s.is_client_error() => lang.pick("Pedido inválido", "Bad request"),
            _ => lang.pick("Serviço indisponível", "Service unavailable"),
        };
        Self { status, html: document(lang, title, "", &body) }
    }

    /// A service's refusal as a page: the caller's mistake a 4xx naming what was wrong, an outage
    /// a 503, anything else a 502; never a 500.
    pub fn status(lang: Lang, s: &tonic::Status) -> Self {
        let code = match s.code() {
            Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
            Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_GATEWAY,
        };
        Self::error(lang, code, s.message())
    }

    pub fn bad_field(lang: Lang, field: &str, why: &str) -> Self {
        let msg = format!("{}: {field}: {why}", lang.pick("Campo inválido", "Invalid field"));
        Self::error(lang, StatusCode::BAD_REQUEST, &msg)
    }
}

/// A table: its caption, column heads, rows of cells already HTML, and the message of an
/// empty one.
pub(crate) struct Table {
    html: String,
    cols: usize,
    rows: usize,
}

impl Table {
    /// `caption` and `heads` are text (escaped here).
    pub fn new(caption: &str, heads: &[&str]) -> Self {
        let mut html = format!("<table><caption>{}</caption><thead><tr>", esc(caption));
        for h in heads {
            let _ = write!(html, "<th scope=\"col\">{}</th>", esc(h));
        }
        html.push_str("</tr></thead><tbody>");
        Self { html, cols: heads.len(), rows: 0 }
    }

    /// A row of HTML cells; `class` names the row when not empty.
    pub fn row_class(&mut self, class: &str, cells: &[&str]) {
        self.rows += 1;
        if class.is_empty() {
            self.html.push_str("<tr>");
        } else {
            let _ = write!(self.html, "<tr class=\"{}\">", esc(class));
        }
        for c in cells {
            let _ = write!(self.html, "<td>{c}</td>");
        }
        self.html.push_str("</tr>");
    }

    pub fn row(&mut self, cells: &[&str]) {
        self.row_class("", cells);
    }

    /// A row headed by `head` (text), then HTML cells.
    pub fn headed_row(&mut self, head: &str, cells: &[&str]) {
        self.rows += 1;
        let _ = write!(self.html, "<tr><th scope=\"row\">{}</th>", esc(head));
        for c in cells {
            let _ = write!(self.html, "<td>{c}</td>");
        }
        self.html.push_str("</tr>");
    }

    /// The table's HTML; `empty` (text) is its one row when it has none.
    pub fn finish(mut self, empty: &str) -> String {
        if self.rows == 0 {
            let _ = write!(self.html, "<tr><td colspan=\"{}\">{}</td></tr>", self.cols, esc(empty));
        }
        self.html.push_str("</tbody></table>");
        self.html
    }
}

/// The `ok` notices pages show after a form (post, redirect, get).
pub(crate) fn notice(lang: Lang, q: &HashMap<String, String>) -> Option<String> {
    let n = match q.get("ok")?.as_str() {
        "replayed" => lang.pick("Reenvio enfileirado.", "Replay queued."),
        "mapped" => lang.pick(
            "Forma de pagamento mapeada; as vendas estacionadas foram reenviadas.",
            "Payment method mapped; the parked sales were replayed.",
        ),
        "saved" => lang.pick("Salvo.", "Saved."),
        "deleted" => lang.pick("Excluído.", "Deleted."),
        "moved" => lang.pick(
            "Venda sendo movida para a outra loja: o estoque volta ao depósito de origem e sai do novo.",
            "Sale being moved to the other store: its stock goes back to its depósito and out of the new one.",
        ),
        "connected" => lang.pick("Credenciais salvas (seladas).", "Credentials saved (sealed)."),
        "disconnected" => lang.pick("Conexão desconectada.", "Connection disconnected."),
        "suspended" => lang.pick(
            "Licença suspensa: os eventos do tenant são guardados e retidos até a reativação.",
            "Licence suspended: the tenant's events are stored and held until it is reactivated.",
        ),
        "licensed" => lang.pick(
            "Licença ativa: os eventos retidos seguem na ordem em que chegaram.",
            "Licence active: the held events flow in the order they arrived.",
        ),
        _ => return None,
    };
    Some(n.to_owned())
}
