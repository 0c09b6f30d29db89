//! The portal's outbound events: posted form-encoded in PHP-array notation with
//! `auth[application_token]`, once (a failed post is logged, never resent), to the outgoing
//! webhook set up in the CRM UI and to every handler the app bound with `event.bind`, and the
//! app's installation (`ONAPPINSTALL` posted to its installation path with a fresh token pair).

use std::time::Duration;

use super::{
    portal::{Binding, Bitrix24, EventDelivery},
    tokens::Grant,
};
use crate::common::Retry;

impl Bitrix24 {
    /// Installs the app at its configured installation path (`Config::install_url`); `None`
    /// when the app has none.
    pub fn install(&self) -> Option<Grant> {
        self.config.install_url.as_deref().map(|url| self.install_app(url))
    }

    /// Installs the app: posts `ONAPPINSTALL` (form-encoded, with a fresh token pair and the
    /// application token) to `handler`, the app's installation path.
    pub fn install_app(&self, handler: &str) -> Grant {
        let now = self.now();
        let grant =
            self.inner.lock().tokens.mint(now, self.span(self.config.access_ttl), self.span(self.config.refresh_ttl));
        let mut form = vec![
            ("event".to_owned(), "ONAPPINSTALL".to_owned()),
            ("data[VERSION]".into(), "1".into()),
            ("data[ACTIVE]".into(), "Y".into()),
            ("data[INSTALLED]".into(), "Y".into()),
            ("data[LANGUAGE_ID]".into(), "br".into()),
            ("ts".into(), now.timestamp().to_string()),
        ];
        form.extend(self.app_auth(&grant));
        form.push(("auth[refresh_token]".into(), grant.refresh_token.clone()));
        self.post_event("ONAPPINSTALL", 0, handler.to_owned(), form);
        grant
    }

    /// A span of sandbox time (the clock itself runs `time_scale` times faster).
    pub(super) fn span(&self, d: Duration) -> chrono::Duration {
        chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
    }

    fn app_auth(&self, grant: &Grant) -> Vec<(String, String)> {
        let c = &self.config;
        let endpoint = self.inner.lock().client_endpoint.clone();
        vec![
            ("auth[access_token]".into(), grant.access_token.clone()),
            ("auth[expires]".into(), grant.expires.timestamp().to_string()),
            ("auth[expires_in]".into(), c.access_ttl.as_secs().to_string()),
            ("auth[scope]".into(), c.app_scopes.join(",")),
            ("auth[domain]".into(), c.domain.clone()),
            ("auth[server_endpoint]".into(), "https://oauth.bitrix.info/rest/".into()),
            ("auth[status]".into(), "L".into()),
            ("auth[client_endpoint]".into(), endpoint),
            ("auth[member_id]".into(), c.member_id.clone()),
            ("auth[user_id]".into(), "1".into()),
            ("auth[application_token]".into(), c.application_token.clone()),
        ]
    }

    /// Posts `event` about entity `id` to the outgoing webhook and every bound handler. Like
    /// Bitrix24, once: a failed post is logged, never resent.
    pub(super) fn raise(&self, event: &str, id: u64) {
        let c = &self.config;
        let now = self.now();
        let base = |handler_id: u64| {
            vec![
                ("event".to_owned(), event.to_owned()),
                ("event_handler_id".to_owned(), handler_id.to_string()),
                ("data[FIELDS][ID]".to_owned(), id.to_string()),
                ("ts".to_owned(), now.timestamp().to_string()),
            ]
        };
        if let Some(url) = &c.event_url
            && c.outgoing_events.iter().any(|e| e.eq_ignore_ascii_case(event))
        {
            let endpoint = self.inner.lock().client_endpoint.clone();
            let mut form = base(1);
            form.extend([
                ("auth[domain]".to_owned(), c.domain.clone()),
                ("auth[client_endpoint]".to_owned(), endpoint),
                ("auth[server_endpoint]".to_owned(), "https://oauth.bitrix.info/rest/".to_owned()),
                ("auth[member_id]".to_owned(), c.member_id.clone()),
                ("auth[application_token]".to_owned(), c.application_token.clone()),
            ]);
            self.post_event(event, id, url.clone(), form);
        }
        let bound: Vec<Binding> =
            self.inner.lock().bindings.iter().filter(|b| b.event.eq_ignore_ascii_case(event)).cloned().collect();
        for b in bound {
            let grant = self.inner.lock().tokens.mint(now, self.span(c.access_ttl), self.span(c.refresh_ttl));
            let mut form = base(b.id);
            form.extend(self.app_auth(&grant));
            self.post_event(event, id, b.handler.clone(), form);
        }
    }

    fn post_event(&self, event: &str, id: u64, handler: String, form: Vec<(String, String)>) {
        let body = serde_urlencoded::to_string(&form).unwrap_or_default();
        let headers = vec![("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned())];
        let (me, name, target, sent) = (self.clone(), event.to_owned(), handler.clone(), body.clone());
        let copies =
            self.rt.outbox.post(&handler, headers, body.clone(), Retry::once(Duration::from_secs(10)), move |a| {
                let delivery = EventDelivery {
                    event: name.clone(),
                    id,
                    handler: target.clone(),
                    body: sent.clone(),
                    status: a.status,
                };
                me.inner.lock().events.push(delivery);
            });
        let mut inner = self.inner.lock();
        inner.stats.events_sent += 1;
        if copies == 0 {
            inner.events.push(EventDelivery { event: event.into(), id, handler, body, status: None });
        }
    }
}
