//! Bling echoing ponte's own situação writes. Moving an order's situação makes Bling send
//! `order.updated`; that event must not send anything to 360 nor move anything back. The
//! shipment keeps the situação ponte wrote and when; an `order.updated` that carries that
//! situação and the total ponte last read, dated within [`WINDOW`] of the write, is the echo:
//! it is answered without a call to either side, once (the next one is read from Bling like any
//! other event). Anything else — an edit at the same situação, an echo arriving late — is read
//! from Bling and compared with what 360 holds, which is always right, only dearer.

use ponte_core::time::now_millis;
use rust_decimal::Decimal;

use crate::shipments::Shipment;

/// How far an echo's date may be from ponte's write (Bling dates have one-second resolution, and
/// its clock is not ponte's).
pub(crate) const WINDOW: i64 = 120_000;

/// What a Bling order event says of the order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sent {
    pub situacao: Option<i64>,
    pub total: Option<Decimal>,
    /// Unix ms: the event's date.
    pub occurred: i64,
}

/// Whether `sent` is Bling echoing the write `s` waits for.
pub(crate) fn is_echo(s: &Shipment, sent: &Sent) -> bool {
    let Some(echo) = s.echo else { return false };
    sent.situacao == Some(echo.situacao)
        && sent.total.is_some()
        && sent.total == s.total()
        && (sent.occurred - echo.at).abs() <= WINDOW
}

/// Forgets the write once its echo came back.
pub(crate) fn consume(s: &mut Shipment) {
    s.echo = None;
}

/// Expects the echo of ponte writing `situacao` now.
pub(crate) fn expect(s: &mut Shipment, situacao: i64) {
    s.echo = Some(crate::shipments::Echo { situacao, at: now_millis() });
}

#[cfg(test)]
mod tests {
    use ponte_core::{BlingId, TenantId};

    use super::*;
    use crate::shipments::Echo;

    #[test]
    fn only_the_awaited_situacao_with_the_known_total_near_the_write_is_an_echo() {
        let mut s = Shipment::new(&TenantId::parse("loja").unwrap(), BlingId::new(9).unwrap());
        s.bling_total = "129.8".into();
        let sent = Sent { situacao: Some(501), total: Some(Decimal::new(1298, 1)), occurred: 1_000_000 };
        assert!(!is_echo(&s, &sent), "nothing awaited");
        s.echo = Some(Echo { situacao: 501, at: 1_000_500 });
        assert!(is_echo(&s, &sent));
        assert!(!is_echo(&s, &Sent { situacao: Some(502), ..sent }), "another situação");
        assert!(!is_echo(&s, &Sent { total: Some(Decimal::from(130)), ..sent }), "an edit of the total");
        assert!(!is_echo(&s, &Sent { total: None, ..sent }), "no total to compare");
        assert!(!is_echo(&s, &Sent { occurred: 1_000_500 + WINDOW + 1, ..sent }), "long after the write");
        consume(&mut s);
        assert!(!is_echo(&s, &sent), "an echo is taken once");
    }
}
