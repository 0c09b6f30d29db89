//! Pure conversions between Bitrix24's records and ponte's values: a tenant's mapped fields
//! into [`ProductFields`] (and a read [`Product`] back into the fields a mapping reads), the
//! Y/N flags, Bling's default sales situações into deal stages, and whether what the portal
//! holds already equals what ponte would write (so an unchanged record is not written again,
//! and the echo of ponte's own write stops there). Numbers compare as decimals.

use ponte_core::error::quote;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::types::{Deal, DealFields, DealRow, Product, ProductFields, PropertyKey, StageId, YesNo, field_values};
use crate::{
    bling::transformers::SituacaoVenda,
    json::{same_text, scalar_text},
};

impl From<bool> for YesNo {
    fn from(b: bool) -> Self {
        if b { Self::Y } else { Self::N }
    }
}

impl From<YesNo> for bool {
    fn from(f: YesNo) -> Self {
        f == YesNo::Y
    }
}

/// Why a value is not a Y/N flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not Y or N")]
pub struct NotAFlag(String);

/// `Y`/`N` in any case, as Bitrix24 reads them; also a boolean, `1`/`0`, and empty for `N`.
impl TryFrom<&Value> for YesNo {
    type Error = NotAFlag;

    fn try_from(v: &Value) -> Result<Self, Self::Error> {
        let text = match v {
            Value::Bool(b) => return Ok((*b).into()),
            other => scalar_text(other).unwrap_or_default(),
        };
        match text.trim().to_ascii_uppercase().as_str() {
            "Y" | "TRUE" | "1" => Ok(Self::Y),
            "N" | "FALSE" | "0" | "" if !v.is_null() => Ok(Self::N),
            _ => Err(NotAFlag(quote(&v.to_string()))),
        }
    }
}

/// A mapped field ponte cannot write as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mapped field {field}: {message}")]
pub struct BadField {
    pub field: String,
    pub message: String,
}

/// A tenant's mapped fields (the mapping service's answer, in the portal's field names) as the
/// product ponte writes: the fields it knows typed, `PROPERTY_*` by key, the rest as given.
/// `null` stays as given: the portal decides what it means.
impl TryFrom<Map<String, Value>> for ProductFields {
    type Error = BadField;

    fn try_from(mapped: Map<String, Value>) -> Result<Self, Self::Error> {
        let bad = |field: &str, message: String| BadField { field: field.to_owned(), message };
        let mut p = ProductFields::default();
        for (field, value) in mapped {
            if value.is_null() {
                p.extra.insert(field, value);
                continue;
            }
            match field.as_str() {
                "NAME" | "XML_ID" => {
                    let text = scalar_text(&value)
                        .ok_or_else(|| bad(&field, format!("{} is not text", quote(&value.to_string()))))?;
                    *(if field == "NAME" { &mut p.name } else { &mut p.xml_id }) = Some(text);
                }
                "PRICE" => {
                    let text = scalar_text(&value).unwrap_or_default();
                    let price = text.trim().parse::<Decimal>().or_else(|_| Decimal::from_scientific(text.trim()));
                    p.price =
                        Some(price.map_err(|_| bad(&field, format!("{} is not a number", quote(&value.to_string()))))?);
                }
                "ACTIVE" => p.active = Some(YesNo::try_from(&value).map_err(|e| bad(&field, e.to_string()))?),
                _ => match PropertyKey::parse(&field) {
                    Some(key) => {
                        p.properties.insert(key, value);
                    }
                    None => {
                        p.extra.insert(field, value);
                    }
                },
            }
        }
        Ok(p)
    }
}

/// A field's value as compared: its values' text (a property's `value`s), a flag as Y/N.
fn text(v: &Value) -> String {
    match v {
        Value::Bool(b) => (if *b { "Y" } else { "N" }).to_owned(),
        other => field_values(Some(other)).join("\u{1f}").trim().to_owned(),
    }
}

impl ProductFields {
    /// Property `key` carries `value`, whatever the mapping said under the property's `code`
    /// (`PROPERTY_BLING_ID`, before the portal's `n` is known).
    pub fn set_property(&mut self, code: &str, key: PropertyKey, value: String) {
        self.properties.remove(&PropertyKey::Code(code.to_owned()));
        self.properties.insert(key, Value::String(value));
    }

    /// Whether `current` (as the portal returns it: numbers as text, properties as
    /// `{"valueId", "value"}`) already holds every field given here.
    pub fn held_by(&self, current: &Product) -> bool {
        let same =
            |wanted: Option<&str>, held: Option<&str>| wanted.is_none_or(|w| same_text(w, held.unwrap_or_default()));
        same(self.name.as_deref(), current.name.as_deref())
            && same(self.xml_id.as_deref(), current.xml_id.as_deref())
            && self.active.is_none_or(|a| current.active == Some(a))
            && self.price.is_none_or(|p| current.price == Some(p))
            && self.properties.iter().all(|(k, w)| same_text(&text(w), current.property(k).join("\u{1f}").trim()))
            && self.extra.iter().all(|(k, w)| same_text(&text(w), &current.extra.get(k).map(text).unwrap_or_default()))
    }
}

impl Product {
    /// The product as a tenant's mapping reads it: the portal's own field names and text
    /// values, with property `key`'s value plain under the name of its `code`
    /// (`PROPERTY_BLING_ID`), which the mapping knows whatever the portal's `n`.
    pub fn mapping_source(&self, key: &PropertyKey, code: &str) -> Map<String, Value> {
        let mut source = match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        if let Some(v) = source.remove(&key.to_string()) {
            let plain = field_values(Some(&v)).into_iter().next().unwrap_or_default();
            source.insert(PropertyKey::Code(code.to_owned()).to_string(), Value::String(plain));
        }
        source
    }
}

impl From<SituacaoVenda> for StageId {
    /// The default pipeline's stage for a default situação of Bling's sales module.
    fn from(s: SituacaoVenda) -> Self {
        StageId(
            match s {
                SituacaoVenda::EmAberto => "NEW",
                SituacaoVenda::EmAndamento => "EXECUTING",
                SituacaoVenda::Atendido => "WON",
                SituacaoVenda::Cancelado => "LOSE",
            }
            .to_owned(),
        )
    }
}

/// Why a text is not a deal stage id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadStage {
    #[error("is required: the Bitrix24 deal stage id (e.g. NEW, PREPARATION, C3:WON)")]
    Empty,
    #[error("{0} is longer than {max} characters, the most a Bitrix24 stage id has", max = StageId::MAX_LEN)]
    TooLong(String),
    #[error(
        "{0} is not a Bitrix24 deal stage id: only uppercase letters, digits, '_' and ':' (e.g. NEW, PREPARATION, C3:WON)"
    )]
    Syntax(String),
}

impl StageId {
    /// Bitrix24 keeps stage ids of at most 50 characters.
    pub const MAX_LEN: usize = 50;

    /// A stage id in Bitrix24's syntax: `NEW`, `C3:WON`, `C12:UC_A1B2C3`.
    pub fn parse(raw: &str) -> Result<Self, BadStage> {
        if raw.is_empty() {
            return Err(BadStage::Empty);
        }
        if raw.chars().count() > Self::MAX_LEN {
            return Err(BadStage::TooLong(quote(raw)));
        }
        if !raw.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b':') {
            return Err(BadStage::Syntax(quote(raw)));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The pipeline (`CATEGORY_ID`) the stage belongs to when it is not the default one:
    /// `C3:WON` → 3.
    pub fn pipeline(&self) -> Option<u32> {
        let (prefix, _) = self.0.split_once(':')?;
        prefix.strip_prefix('C')?.parse().ok()
    }
}

impl DealFields {
    /// Whether `current` already holds every field given here.
    pub fn held_by(&self, current: &Deal) -> bool {
        let same = |wanted: &Option<String>, held: &Option<String>| {
            wanted.as_deref().is_none_or(|w| same_text(w, held.as_deref().unwrap_or_default()))
        };
        let category = current.extra.get("CATEGORY_ID").map(text).unwrap_or_default();
        same(&self.title, &current.title)
            && same(&self.originator_id, &current.originator_id)
            && same(&self.origin_id, &current.origin_id)
            && same(&self.currency_id, &current.currency_id)
            && self.opportunity.is_none_or(|o| current.opportunity == Some(o))
            && self.stage_id.as_ref().is_none_or(|s| current.stage_id.as_ref() == Some(s))
            && self.category_id.is_none_or(|c| same_text(&c.to_string(), &category))
    }
}

/// Whether a deal's rows (`theirs`, as the portal returns them, with fields ponte does not
/// write) are `ours`: the same products at the same unit prices and quantities, in order.
pub fn same_rows(ours: &[DealRow], theirs: &[DealRow]) -> bool {
    ours.len() == theirs.len()
        && ours
            .iter()
            .zip(theirs)
            .all(|(a, b)| a.product_id == b.product_id && a.price == b.price && a.quantity == b.quantity)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::bitrix24::types::ProductId;

    fn mapped(v: Value) -> ProductFields {
        let Value::Object(m) = v else { panic!("not an object") };
        ProductFields::try_from(m).unwrap()
    }

    /// `crm.product.get` as the portal answers it, with a "Bling ID" property (104).
    fn read() -> Product {
        serde_json::from_value(json!({"ID": "410", "NAME": "Camiseta", "ACTIVE": "Y", "PRICE": "59.90",
            "XML_ID": "123", "CURRENCY_ID": "BRL", "SORT": "500", "SECTION_ID": null,
            "PROPERTY_104": {"valueId": "3", "value": "16059781281"}, "PROPERTY_7": {"valueId": "4", "value": "99"}}))
        .unwrap()
    }

    #[test]
    fn the_builtin_mapping_becomes_typed_fields() {
        let p = mapped(json!({"PROPERTY_BLING_ID": 16059781281_i64, "NAME": "Camiseta azul M", "XML_ID": "CAM-AZ-M",
                              "PRICE": 59.9, "ACTIVE": "Y", "SECTION_ID": 12, "DETAIL_TEXT": null}));
        assert_eq!((p.name.as_deref(), p.xml_id.as_deref()), (Some("Camiseta azul M"), Some("CAM-AZ-M")));
        assert_eq!((p.price, p.active), (Some(Decimal::new(599, 1)), Some(YesNo::Y)));
        assert_eq!(p.properties[&PropertyKey::Code("BLING_ID".into())], json!(16059781281_i64));
        assert_eq!((p.extra["SECTION_ID"].clone(), p.extra["DETAIL_TEXT"].clone()), (json!(12), Value::Null));
        let e = ProductFields::try_from(json!({"PRICE": "dez"}).as_object().unwrap().clone()).unwrap_err();
        assert_eq!(e.to_string(), "mapped field PRICE: '\"dez\"' is not a number");
        let e = ProductFields::try_from(json!({"ACTIVE": "A"}).as_object().unwrap().clone()).unwrap_err();
        assert!(e.to_string().starts_with("mapped field ACTIVE: "), "{e}");
    }

    #[test]
    fn flags_read_as_bitrix24_reads_them() {
        for (v, want) in
            [(json!("Y"), YesNo::Y), (json!("n"), YesNo::N), (json!(true), YesNo::Y), (json!(""), YesNo::N)]
        {
            assert_eq!(YesNo::try_from(&v).unwrap(), want, "{v}");
        }
        assert!(YesNo::try_from(&json!("yes")).is_err() && YesNo::try_from(&Value::Null).is_err());
        assert!(bool::from(YesNo::from(true)) && !bool::from(YesNo::N));
    }

    #[test]
    fn text_numbers_and_property_values_compare_equal_to_mapped_values() {
        let mut wanted = mapped(json!({"NAME": "Camiseta", "PRICE": 59.9, "ACTIVE": "Y", "XML_ID": "123",
                                       "PROPERTY_7": "99", "SORT": 500}));
        wanted.set_property("BLING_ID", PropertyKey::parse("PROPERTY_104").unwrap(), "16059781281".into());
        assert!(wanted.held_by(&read()));
        for changed in
            [json!({"PRICE": "60.00"}), json!({"ACTIVE": "N"}), json!({"PROPERTY_7": "98"}), json!({"SORT": 10})]
        {
            let mut other = wanted.clone();
            let more = mapped(changed.clone());
            other.price = more.price.or(other.price);
            other.active = more.active.or(other.active);
            other.properties.extend(more.properties);
            other.extra.extend(more.extra);
            assert!(!other.held_by(&read()), "{changed}");
        }
    }

    #[test]
    fn a_read_product_is_what_the_mapping_reads_with_the_bling_id_plain() {
        let source = read().mapping_source(&PropertyKey::parse("PROPERTY_104").unwrap(), "BLING_ID");
        assert_eq!(source["PROPERTY_BLING_ID"], "16059781281");
        assert!(!source.contains_key("PROPERTY_104"));
        assert_eq!((source["PRICE"].clone(), source["ACTIVE"].clone()), (json!("59.90"), json!("Y")));
        assert_eq!((source["ID"].clone(), source["PROPERTY_7"]["value"].clone()), (json!("410"), json!("99")));
    }

    #[test]
    fn default_situacoes_have_default_stages_and_stages_name_their_pipeline() {
        let stage = |id: i64| SituacaoVenda::try_from(id).ok().map(StageId::from).map(|s| s.0);
        assert_eq!([6, 15, 9, 12].map(stage), ["NEW", "EXECUTING", "WON", "LOSE"].map(|s| Some(s.to_owned())));
        assert_eq!(stage(24), None, "a merchant's own situação has no default stage");
        for ok in ["PREPARATION", "C3:WON", "C12:UC_A1B2C3", "NEW", &"A".repeat(50)] {
            assert_eq!(StageId::parse(ok).map(|s| s.0), Ok(ok.to_owned()));
        }
        assert_eq!(StageId::parse(""), Err(BadStage::Empty));
        assert!(matches!(StageId::parse(&"A".repeat(51)), Err(BadStage::TooLong(_))));
        for bad in ["preparation", "C3 WON", " NEW", "NEW-1", "ÉTAPA"] {
            assert!(matches!(StageId::parse(bad), Err(BadStage::Syntax(_))), "{bad}");
        }
        let pipeline = |s: &str| StageId(s.into()).pipeline();
        assert_eq!((pipeline("C3:WON"), pipeline("C12:UC_A1B2")), (Some(3), Some(12)));
        assert_eq!((pipeline("PREPARATION"), pipeline("UC_X:Y")), (None, None));
    }

    #[test]
    fn deals_compare_by_the_fields_written_and_rows_by_product_price_and_quantity() {
        // crm.deal.get as the portal answers it.
        let deal: Deal = serde_json::from_value(json!({"ID": "394", "TITLE": "Pedido 12 (Bling)", "TYPE_ID": "SALE",
            "CATEGORY_ID": "0", "STAGE_ID": "NEW", "CURRENCY_ID": "BRL", "OPPORTUNITY": "119.80",
            "ORIGINATOR_ID": "bling", "ORIGIN_ID": "9001", "UF_CRM_X": null}))
        .unwrap();
        let ours = DealFields {
            title: Some("Pedido 12 (Bling)".into()),
            originator_id: Some("bling".into()),
            origin_id: Some("9001".into()),
            opportunity: Some(Decimal::new(1198, 1)),
            currency_id: Some("BRL".into()),
            stage_id: Some(StageId("NEW".into())),
            category_id: None,
        };
        assert!(ours.held_by(&deal));
        assert!(!DealFields { stage_id: Some(StageId("WON".into())), ..ours.clone() }.held_by(&deal));
        assert!(!DealFields { opportunity: Some(Decimal::from(120)), ..ours }.held_by(&deal));

        let ours = [DealRow {
            product_id: ProductId::new(12),
            product_name: "Copo".into(),
            price: Decimal::new(5990, 2),
            quantity: Decimal::from(2),
        }];
        // crm.deal.productrows.get: every number as text, and fields ponte does not write.
        let theirs: Vec<DealRow> = serde_json::from_value(json!([{"ID": "7", "OWNER_ID": "3", "PRODUCT_ID": "12",
            "PRODUCT_NAME": "Copo", "PRICE": 59.9, "QUANTITY": "2.00", "DISCOUNT_SUM": 0}]))
        .unwrap();
        assert!(same_rows(&ours, &theirs));
        let other: Vec<DealRow> =
            serde_json::from_value(json!([{"PRODUCT_ID": "12", "PRICE": "59.9", "QUANTITY": "3"}])).unwrap();
        assert!(!same_rows(&ours, &other) && !same_rows(&ours, &[]));
        let free: DealRow = serde_json::from_value(json!({"PRODUCT_ID": 0, "PRICE": "1", "QUANTITY": "1"})).unwrap();
        assert_eq!(free.product_id, None);
        assert_eq!(serde_json::to_value(&free).unwrap()["PRODUCT_ID"], 0);
        assert_eq!(
            serde_json::to_value(&ours[0]).unwrap(),
            json!({"PRODUCT_ID": 12, "PRODUCT_NAME": "Copo",
            "PRICE": "59.90", "QUANTITY": "2"})
        );
    }
}
