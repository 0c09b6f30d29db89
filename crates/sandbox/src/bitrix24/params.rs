//! How a Bitrix24 method reads its parameters: PHP-style query strings (`filter[XML_ID]=1`,
//! `select[]=ID`), form bodies in the same notation, and JSON bodies, merged the way PHP's
//! `$_REQUEST` merges them (the body wins over the query string).

use serde_json::{Map, Value};

/// Parses PHP-style nested pairs (`fields[NAME]=x&select[]=ID&rows[0][PRICE]=1`) into JSON.
/// Every leaf is a string, as PHP's `parse_str` makes it; maps keyed `0..n` become arrays.
pub fn parse_php_query(q: &str) -> Value {
    let mut root = Map::new();
    for (key, value) in url::form_urlencoded::parse(q.as_bytes()) {
        let path = key_path(&key);
        let Some((head, rest)) = path.split_first() else { continue };
        if head.is_empty() {
            continue;
        }
        insert(&mut root, head, rest, Value::String(value.into_owned()));
    }
    listify(Value::Object(root))
}

/// `a[b][]` → `["a", "b", ""]`. A key with an unbalanced bracket keeps it as text, like PHP.
fn key_path(key: &str) -> Vec<String> {
    let Some(open) = key.find('[') else { return vec![key.to_owned()] };
    let mut parts = vec![key[..open].to_owned()];
    let mut rest = &key[open..];
    while let Some(inner) = rest.strip_prefix('[') {
        let Some(close) = inner.find(']') else { break };
        parts.push(inner[..close].to_owned());
        rest = &inner[close + 1..];
    }
    parts
}

fn insert(map: &mut Map<String, Value>, key: &str, rest: &[String], value: Value) {
    let key = if key.is_empty() { next_index(map) } else { key.to_owned() };
    match rest.split_first() {
        None => {
            map.insert(key, value);
        }
        Some((next, tail)) => {
            let slot = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                // `a=1&a[b]=2`: the later, nested form wins, as in PHP.
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(inner) = slot {
                insert(inner, next, tail, value);
            }
        }
    }
}

/// `a[]=x` appends: the next integer key after the largest one so far.
fn next_index(map: &Map<String, Value>) -> String {
    map.keys().filter_map(|k| k.parse::<u64>().ok()).max().map_or(0, |m| m + 1).to_string()
}

/// Maps whose keys are exactly `0..n` are PHP lists: make them JSON arrays.
fn listify(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let n = m.len();
            let sequential = n > 0 && (0..n).all(|i| m.contains_key(&i.to_string()));
            if sequential {
                let mut m = m;
                Value::Array((0..n).map(|i| listify(m.remove(&i.to_string()).unwrap_or(Value::Null))).collect())
            } else {
                Value::Object(m.into_iter().map(|(k, v)| (k, listify(v))).collect())
            }
        }
        other => other,
    }
}

/// Writes a map the way PHP's `json_encode` writes an array: `[]` when empty, a JSON list when
/// its keys are `0..n` in order, an object otherwise.
pub fn php_array(m: Map<String, Value>) -> Value {
    let sequential = m.keys().enumerate().all(|(i, k)| *k == i.to_string());
    if sequential { Value::Array(m.into_iter().map(|(_, v)| v).collect()) } else { Value::Object(m) }
}

/// The parameters of one call: the query string, then the body (JSON or form-encoded) over it.
/// A body PHP cannot decode counts as no body, which is what Bitrix24 does with it.
pub fn request_params(query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Map<String, Value> {
    let mut params = match query.map(parse_php_query) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let body_params = if body.is_empty() {
        Map::new()
    } else if content_type.is_some_and(|c| c.contains("json")) {
        match serde_json::from_slice(body) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    } else {
        match parse_php_query(&String::from_utf8_lossy(body)) {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    };
    params.extend(body_params);
    params
}

/// A parameter as text: strings as they are, numbers printed, `true`/`false` as `Y`/`N`.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "Y" } else { "N" }.to_owned()),
        _ => None,
    }
}

/// A positive integer id given as a number or a string (`"id": "42"`).
pub fn id(v: &Value) -> Option<u64> {
    text(v).and_then(|s| s.trim().parse().ok()).filter(|id| *id > 0)
}

/// A parameter read case-insensitively: Bitrix24 accepts `id`, `ID` and `Id` alike.
pub fn get<'a>(params: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    params.get(name).or_else(|| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nested_php_pairs_become_json() {
        let v = parse_php_query(
            "fields[NAME]=Camiseta+azul&fields[PRICE]=59.9&select[]=ID&select[]=NAME&rows[0][PRODUCT_ID]=1&rows[1][PRODUCT_ID]=2&id=$result[p1][0][ID]",
        );
        assert_eq!(
            v,
            json!({"fields": {"NAME": "Camiseta azul", "PRICE": "59.9"}, "select": ["ID", "NAME"],
                   "rows": [{"PRODUCT_ID": "1"}, {"PRODUCT_ID": "2"}], "id": "$result[p1][0][ID]"})
        );
        assert_eq!(parse_php_query("filter[%3EID]=5"), json!({"filter": {">ID": "5"}}));
        assert_eq!(parse_php_query("a[7]=x"), json!({"a": {"7": "x"}}), "a sparse PHP array stays a map");
    }

    #[test]
    fn the_body_wins_over_the_query() {
        let p = request_params(Some("id=1&start=50"), Some("application/json"), br#"{"id": 2}"#);
        assert_eq!(Value::Object(p), json!({"id": 2, "start": "50"}));
        let p = request_params(None, Some("application/json"), b"{not json");
        assert!(p.is_empty());
    }

    #[test]
    fn php_arrays_encode_like_json_encode() {
        assert_eq!(php_array(Map::new()), json!([]));
        let mut m = Map::new();
        m.insert("0".into(), json!("a"));
        m.insert("1".into(), json!("b"));
        assert_eq!(php_array(m.clone()), json!(["a", "b"]));
        m.insert("x".into(), json!("c"));
        assert_eq!(php_array(m), json!({"0": "a", "1": "b", "x": "c"}));
    }
}
