//! `batch`: up to 50 commands in one request (one slot of the portal's budget), each a
//! `method?php-style-query` string. Commands are typed ([`Batch`]'s methods), each answers in its
//! own [`Slot`], and a command's error is classified here like a whole answer's, so a caller
//! never reads Bitrix24's keys or codes. A later command may name an earlier one's result
//! ([`Ref::Result`]) within the same 50.

use std::{collections::BTreeMap, marker::PhantomData};

use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

use super::{
    BATCH_LIMIT, SYSTEM,
    client::{Portal, classify},
    types::{BatchResult, Deal, DealFields, DealId, Envelope, ErrorBody, Product, ProductFields, ProductId},
};
use crate::error::ConnectorError;

/// Encodes JSON as a PHP-style query string (`fields[NAME]=x&select[]=ID`), as `batch`
/// commands carry their parameters. `$result[...]` references pass through unescaped.
pub fn php_query(params: &Value) -> String {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}[{k}]") };
                    walk(&key, v, out);
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), v, out);
                }
            }
            Value::Null => out.push(format!("{}=", enc(prefix))),
            Value::Bool(b) => out.push(format!("{}={}", enc(prefix), if *b { "Y" } else { "N" })),
            Value::Number(n) => out.push(format!("{}={n}", enc(prefix))),
            Value::String(s) if s.starts_with("$result[") => out.push(format!("{}={s}", enc(prefix))),
            Value::String(s) => out.push(format!("{}={}", enc(prefix), enc(s))),
        }
    }
    fn enc(s: &str) -> String {
        url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace("%5B", "[").replace("%5D", "]")
    }
    let mut out = Vec::new();
    walk("", params, &mut out);
    out.join("&")
}

/// Where a command's answer is, typed by what it answers.
#[derive(Debug)]
pub struct Slot<T> {
    key: String,
    answer: PhantomData<fn() -> T>,
}

/// An id a command names: known, or an earlier command's result in the same batch.
#[derive(Debug, Clone)]
pub enum Ref<I> {
    Id(I),
    Result(String),
}

impl<I> From<I> for Ref<I> {
    fn from(id: I) -> Self {
        Self::Id(id)
    }
}

impl<I> From<&Slot<I>> for Ref<I> {
    fn from(slot: &Slot<I>) -> Self {
        Self::Result(slot.key.clone())
    }
}

impl<I: Serialize> Ref<I> {
    fn to_json(&self) -> Value {
        match self {
            Self::Id(id) => json!(id),
            Self::Result(key) => Value::String(format!("$result[{key}]")),
        }
    }
}

/// Commands to run in `batch`, in order.
#[derive(Debug, Default)]
pub struct Batch {
    commands: Vec<(String, String)>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.commands.len()
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    fn push<T>(&mut self, method: &str, params: Value) -> Slot<T> {
        let key = format!("c{}", self.commands.len());
        let q = php_query(&params);
        let command = if q.is_empty() { method.to_owned() } else { format!("{method}?{q}") };
        self.commands.push((key.clone(), command));
        Slot { key, answer: PhantomData }
    }

    pub fn add_product(&mut self, fields: &ProductFields) -> Slot<ProductId> {
        self.push("crm.product.add", json!({ "fields": fields }))
    }

    pub fn update_product(&mut self, id: ProductId, fields: &ProductFields) -> Slot<bool> {
        self.push("crm.product.update", json!({ "id": id, "fields": fields }))
    }

    pub fn get_product(&mut self, id: impl Into<Ref<ProductId>>) -> Slot<Product> {
        self.push("crm.product.get", json!({ "id": id.into().to_json() }))
    }

    /// One page (50, from `start`) of the products whose `filter` holds, with their properties.
    pub(super) fn list_products(&mut self, filter: Value, start: usize) -> Slot<Vec<Product>> {
        let params = json!({"order": {"ID": "ASC"}, "filter": filter, "select": ["*", "PROPERTY_*"], "start": start});
        self.push("crm.product.list", params)
    }

    pub fn add_deal(&mut self, fields: &DealFields) -> Slot<DealId> {
        self.push("crm.deal.add", json!({ "fields": fields }))
    }

    pub fn get_deal(&mut self, id: impl Into<Ref<DealId>>) -> Slot<Deal> {
        self.push("crm.deal.get", json!({ "id": id.into().to_json() }))
    }

    #[cfg(test)]
    fn encoded(&self, i: usize) -> &str {
        &self.commands[i].1
    }
}

/// What a batch answered, command by command.
#[derive(Debug)]
pub struct Answers {
    done: BatchResult,
    webhook: bool,
}

impl Answers {
    /// The answer in `slot`: its result, its error as the portal would classify it alone, or
    /// `None` when the command did not run (`halt` stopped the batch before it).
    pub fn take<T: DeserializeOwned>(&self, slot: &Slot<T>) -> Option<Result<T, ConnectorError>> {
        if let Some(err) = self.done.result_error.get(&slot.key) {
            return Some(Err(classify(None, Some(err), self.webhook)));
        }
        let v = self.done.result.get(&slot.key)?;
        Some(serde_json::from_value(v.clone()).map_err(|e| ConnectorError::Protocol {
            system: SYSTEM,
            message: format!("batch command {}: {e}", slot.key),
        }))
    }

    /// The first command error, classified.
    pub fn first_error(&self) -> Option<ConnectorError> {
        self.done.result_error.values().next().map(|e: &ErrorBody| classify(None, Some(e), self.webhook))
    }
}

impl Portal {
    /// Runs `batch`, 50 commands a call, in order. With `halt`, a failing command stops its
    /// call's remaining commands. Never retried as a whole: callers retry what failed.
    pub async fn batch(&self, batch: &Batch, halt: bool) -> Result<Answers, ConnectorError> {
        let mut done = BatchResult::default();
        for chunk in batch.commands.chunks(BATCH_LIMIT) {
            let cmd: BTreeMap<&str, &str> = chunk.iter().map(|(k, c)| (k.as_str(), c.as_str())).collect();
            let params = json!({"halt": if halt { 1 } else { 0 }, "cmd": cmd});
            let env: Envelope<BatchResult> = self.call("batch", &params).await?;
            done.result.extend(env.result.result);
            done.result_error.extend(env.result.result_error);
            done.result_total.extend(env.result.result_total);
            done.result_next.extend(env.result.result_next);
        }
        Ok(Answers { done, webhook: self.is_webhook() })
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::bitrix24::types::{PropertyKey, YesNo};

    #[test]
    fn commands_are_php_style_queries() {
        let mut b = Batch::new();
        let fields = ProductFields {
            name: Some("Camiseta azul M".into()),
            price: Some(Decimal::new(599, 1)),
            xml_id: Some("16059781281".into()),
            active: Some(YesNo::Y),
            properties: [(PropertyKey::parse("PROPERTY_104").unwrap(), json!("16059781281"))].into(),
            ..Default::default()
        };
        let added = b.add_product(&fields);
        assert_eq!(
            b.encoded(0),
            "crm.product.add?fields[NAME]=Camiseta+azul+M&fields[ACTIVE]=Y&fields[PRICE]=59.9\
             &fields[XML_ID]=16059781281&fields[PROPERTY_104]=16059781281"
        );
        b.get_product(&added);
        assert_eq!(b.encoded(1), "crm.product.get?id=$result[c0]");
        b.update_product(ProductId::new(410).unwrap(), &ProductFields { active: Some(YesNo::N), ..Default::default() });
        assert_eq!(b.encoded(2), "crm.product.update?id=410&fields[ACTIVE]=N");
        let mut filter = serde_json::Map::new();
        filter.insert("@PROPERTY_104".into(), json!(["7", "8"]));
        b.list_products(Value::Object(filter), 50);
        assert_eq!(
            b.encoded(3),
            "crm.product.list?order[ID]=ASC&filter[%40PROPERTY_104][0]=7&filter[%40PROPERTY_104][1]=8\
             &select[0]=*&select[1]=PROPERTY_*&start=50"
        );
        assert_eq!(php_query(&json!({"halt": true, "x": null})), "halt=Y&x=");
    }

    #[test]
    fn answers_come_back_typed_in_their_slots_with_errors_classified() {
        let mut b = Batch::new();
        let added = b.add_product(&ProductFields::default());
        let updated = b.update_product(ProductId::new(9).unwrap(), &ProductFields::default());
        let limited = b.get_product(ProductId::new(10).unwrap());
        let missing = b.get_deal(DealId::new(11).unwrap());
        let deal = b.add_deal(&DealFields::default());
        let never = b.get_deal(&deal);
        // PHP sends empty maps as [].
        let body = r#"{"result":{"c0":"410","c1":true},"result_error":{
            "c2":{"error":"QUERY_LIMIT_EXCEEDED","error_description":"Too many requests"},
            "c3":{"error":"","error_description":"Not found"}},"result_total":[],"result_next":[]}"#;
        let answers = Answers { done: serde_json::from_str(body).unwrap(), webhook: true };
        assert_eq!(answers.take(&added).unwrap().unwrap(), ProductId::new(410).unwrap());
        assert!(answers.take(&updated).unwrap().unwrap());
        let limited = answers.take(&limited).unwrap().unwrap_err();
        assert!(matches!(limited, ConnectorError::RateLimited { .. }) && limited.is_transient(), "{limited:?}");
        let missing = answers.take(&missing).unwrap().unwrap_err();
        assert!(missing.is_not_found() && !missing.is_transient(), "{missing:?}");
        assert!(answers.take(&never).is_none(), "a command that did not run has no answer");
        let empty = r#"{"result":[],"result_error":[],"result_total":[],"result_next":[]}"#;
        let answers = Answers { done: serde_json::from_str(empty).unwrap(), webhook: false };
        assert!(answers.first_error().is_none() && answers.take(&added).is_none());
    }

    #[test]
    fn answers_under_keys_ponte_never_sent_are_ignored_without_panicking() {
        let mut b = Batch::new();
        let added = b.add_product(&ProductFields::default());
        // Empty, one-character, non-ASCII and multi-byte keys, as a broken or hostile portal could send.
        let body = r#"{"result":{"":"1","c":"2","é":"3","ç0":"4","c0x":"5","💥":"6"},
            "result_error":{"":{"error":"X","error_description":"?"},"é":{"error":"Y","error_description":"?"}},
            "result_total":{"":1,"é":2},"result_next":{"ç":3}}"#;
        let answers = Answers { done: serde_json::from_str(body).unwrap(), webhook: false };
        assert!(answers.take(&added).is_none());
        assert!(answers.first_error().is_some());
    }
}
