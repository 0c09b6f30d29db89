//! Bitrix24's outbound events (`contracts/bitrix24.md` §1.9, §1.2): form-encoded in PHP-array
//! notation (`event=…&data[FIELDS][ID]=759&ts=…&auth[application_token]=…`), authenticated by
//! the application token they carry (no HMAC), and the product event names ponte subscribes
//! to, all about the product `data[FIELDS][ID]`. The app's installation (`ONAPPINSTALL`)
//! arrives in the same form.

use url::form_urlencoded;

use crate::webhooks::event_types;

event_types! {
    /// The Bitrix24 product events ponte acts on: the legacy `crm.product.*` ones and their
    /// `catalog.product.*` successors. Bitrix24 spells them in upper case.
    EventType of "Bitrix24" {
        CrmProductAdd = "ONCRMPRODUCTADD",
        CrmProductUpdate = "ONCRMPRODUCTUPDATE",
        CrmProductDelete = "ONCRMPRODUCTDELETE",
        CatalogProductAdd = "CATALOG.PRODUCT.ON.ADD",
        CatalogProductUpdate = "CATALOG.PRODUCT.ON.UPDATE",
        CatalogProductDelete = "CATALOG.PRODUCT.ON.DELETE",
    }
}

impl EventType {
    pub const fn is_deletion(self) -> bool {
        matches!(self, Self::CrmProductDelete | Self::CatalogProductDelete)
    }
}

/// The event posted to the app's installation path right after it is installed.
pub const APP_INSTALL: &str = "ONAPPINSTALL";

/// The `auth[...]` fields kept when a form is stored: who sent it, no credential.
const KEPT_AUTH: [&str; 2] = ["domain", "member_id"];

/// An event's form fields, as posted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventForm(Vec<(String, String)>);

impl EventForm {
    /// Reads a form-encoded body (invalid UTF-8 is replaced, so any body is a form).
    pub fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    /// A field's trimmed value; `None` when absent or blank.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
    }

    /// `event`: the event's name.
    pub fn event(&self) -> Option<&str> {
        self.field("event")
    }

    /// `data[FIELDS][ID]`: the id of the object the event is about.
    pub fn entity_id(&self) -> Option<&str> {
        self.field("data[FIELDS][ID]")
    }

    /// `ts`: when it happened, Unix seconds.
    pub fn ts(&self) -> Option<i64> {
        self.field("ts")?.parse().ok()
    }

    /// The name of the `auth[...]` field `name` (`auth[domain]`).
    pub fn auth_key(name: &str) -> String {
        format!("auth[{name}]")
    }

    /// `auth[name]`.
    pub fn auth(&self, name: &str) -> Option<&str> {
        self.field(&Self::auth_key(name))
    }

    /// `auth[application_token]`: the token every event of the installation carries.
    pub fn application_token(&self) -> Option<&str> {
        self.auth("application_token")
    }

    /// `auth[domain]`: the portal.
    pub fn domain(&self) -> Option<&str> {
        self.auth("domain")
    }

    /// The form without the credentials Bitrix24 puts in it (the application token and, for app
    /// subscriptions, access and refresh tokens), encoded again: what may be kept.
    pub fn without_credentials(&self) -> Vec<u8> {
        let kept = self.0.iter().filter(|(k, _)| {
            k.strip_prefix("auth[").is_none_or(|rest| KEPT_AUTH.iter().any(|name| rest.strip_suffix(']') == Some(name)))
        });
        form_urlencoded::Serializer::new(String::new()).extend_pairs(kept).finish().into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &[u8] = b"event=ONCRMPRODUCTUPDATE&event_handler_id=1&data%5BFIELDS%5D%5BID%5D=759&ts=1736405807\
        &auth%5Bdomain%5D=loja.bitrix24.com.br&auth%5Bmember_id%5D=m1&auth%5Bapplication_token%5D=tok123\
        &auth%5Baccess_token%5D=at&auth%5Brefresh_token%5D=rt";

    #[test]
    fn an_event_form_reads_in_php_array_notation() {
        let form = EventForm::parse(EVENT);
        assert_eq!(form.event().map(str::parse), Some(Ok(EventType::CrmProductUpdate)));
        assert_eq!(form.entity_id(), Some("759"));
        assert_eq!(form.ts(), Some(1_736_405_807));
        assert_eq!(form.application_token(), Some("tok123"));
        assert_eq!(form.domain(), Some("loja.bitrix24.com.br"));
        assert_eq!(EventForm::parse(b"ts=soon&event=%20").ts(), None);
        assert_eq!(EventForm::parse(b"event=%20").event(), None);
    }

    #[test]
    fn a_kept_form_has_no_credentials_and_reads_the_same() {
        let kept = EventForm::parse(EVENT).without_credentials();
        let text = String::from_utf8(kept.clone()).unwrap();
        assert!(!text.contains("tok123") && !text.contains("access_token") && !text.contains("rt"), "{text}");
        assert!(text.contains("auth%5Bdomain%5D=loja.bitrix24.com.br&auth%5Bmember_id%5D=m1"), "{text}");
        let again = EventForm::parse(&kept);
        assert_eq!(
            (again.event(), again.entity_id(), again.ts()),
            (Some("ONCRMPRODUCTUPDATE"), Some("759"), Some(1_736_405_807))
        );
    }

    #[test]
    fn event_types_are_spelled_as_bitrix24_spells_them() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(*t));
        }
        assert!(EventType::CatalogProductDelete.is_deletion());
        assert!("ONCRMDEALUPDATE".parse::<EventType>().is_err());
        assert!("oncrmproductupdate".parse::<EventType>().is_err(), "names are matched as Bitrix24 spells them");
    }
}
