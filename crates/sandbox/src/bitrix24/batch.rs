//! `batch`: up to 50 `method?query` commands run in order, later ones reading earlier results
//! through `$result[key][...]`, `halt` stopping at the first failure, and the answer shaped as
//! PHP writes it (`result`, `result_error`, `result_total`, `result_next`, `result_time`, each
//! `[]` when empty and a list when keyed `0..n`).

use serde_json::{Map, Value, json};

use super::{
    crm::{MethodError, Reply},
    params::{get, parse_php_query, php_array, text},
};
use axum::http::StatusCode;

/// The most commands one call may carry.
pub const MAX_COMMANDS: usize = 50;

/// One command as the caller wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub key: String,
    pub method: String,
    pub query: String,
}

/// Reads `cmd` (an object of named commands or a list) and `halt`.
pub fn commands(params: &Map<String, Value>) -> Result<(Vec<Command>, bool), MethodError> {
    let halt = get(params, "halt").and_then(text).is_some_and(|h| matches!(h.as_str(), "1" | "Y" | "true"));
    let entries: Vec<(String, Value)> = match get(params, "cmd") {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Some(Value::Array(a)) => a.iter().enumerate().map(|(i, v)| (i.to_string(), v.clone())).collect(),
        None | Some(Value::Null) => vec![],
        Some(_) => {
            return Err(MethodError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_ARG_VALUE",
                "Parameter 'cmd' must be array.",
            ));
        }
    };
    if entries.len() > MAX_COMMANDS {
        return Err(MethodError::new(
            StatusCode::BAD_REQUEST,
            "ERROR_BATCH_LENGTH_EXCEEDED",
            "Max batch length exceeded",
        ));
    }
    let commands = entries
        .into_iter()
        .map(|(key, v)| {
            let cmd = text(&v).unwrap_or_default();
            let (method, query) = cmd.split_once('?').unwrap_or((cmd.as_str(), ""));
            Command { key, method: method.trim().trim_end_matches(".json").to_owned(), query: query.to_owned() }
        })
        .collect();
    Ok((commands, halt))
}

/// The timings of one command, in `time`'s shape.
pub type Timing = Value;

/// Runs the commands in order through `exec` and assembles `batch`'s inner result.
pub fn run(
    commands: Vec<Command>,
    halt: bool,
    mut exec: impl FnMut(&str, &Map<String, Value>) -> (Result<Reply, MethodError>, Timing),
) -> Value {
    let (mut result, mut errors, mut totals, mut nexts, mut times) =
        (Map::new(), Map::new(), Map::new(), Map::new(), Map::new());
    for c in commands {
        let mut params = match parse_php_query(&c.query) {
            Value::Object(m) => Value::Object(m),
            _ => Value::Object(Map::new()),
        };
        substitute(&mut params, &Results { result: &result, total: &totals, next: &nexts });
        let params = params.as_object().cloned().unwrap_or_default();
        let (outcome, timing) = if c.method == "batch" {
            let e = MethodError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "ERROR_BATCH_METHOD_NOT_ALLOWED",
                "Method is not allowed for batch usage",
            );
            (Err(e), Value::Null)
        } else {
            exec(&c.method, &params)
        };
        if !timing.is_null() {
            times.insert(c.key.clone(), timing);
        }
        match outcome {
            Ok(reply) => {
                result.insert(c.key.clone(), reply.result);
                if let Some(t) = reply.total {
                    totals.insert(c.key.clone(), json!(t));
                }
                if let Some(n) = reply.next {
                    nexts.insert(c.key.clone(), json!(n));
                }
            }
            Err(e) => {
                errors.insert(c.key, json!({"error": e.code, "error_description": e.description}));
                if halt {
                    break;
                }
            }
        }
    }
    json!({
        "result": php_array(result),
        "result_error": php_array(errors),
        "result_total": php_array(totals),
        "result_next": php_array(nexts),
        "result_time": php_array(times),
    })
}

struct Results<'a> {
    result: &'a Map<String, Value>,
    total: &'a Map<String, Value>,
    next: &'a Map<String, Value>,
}

/// Replaces `$result[key][...]` (and `$result_total[...]`, `$result_next[...]`) in every string
/// of the parsed parameters: a string that is only a reference takes the referenced value
/// itself; references inside longer text are written into it.
fn substitute(v: &mut Value, r: &Results<'_>) {
    match v {
        Value::Object(m) => m.values_mut().for_each(|x| substitute(x, r)),
        Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, r)),
        Value::String(s) if s.contains("$result") => {
            if let Some((found, end)) = reference(s, 0, r)
                && end == s.len()
                && s.starts_with("$result")
            {
                *v = found;
                return;
            }
            let mut out = String::new();
            let mut i = 0;
            while let Some(at) = s[i..].find("$result").map(|p| p + i) {
                out.push_str(&s[i..at]);
                match reference(s, at, r) {
                    Some((found, end)) => {
                        out.push_str(&text(&found).unwrap_or_default());
                        i = end;
                    }
                    None => {
                        out.push_str("$result");
                        i = at + "$result".len();
                    }
                }
            }
            out.push_str(&s[i..]);
            *s = out;
        }
        _ => {}
    }
}

/// Reads the reference starting at `at`: its value (null when it names nothing) and where it
/// ends. `None` when the text there is not a reference.
fn reference(s: &str, at: usize, r: &Results<'_>) -> Option<(Value, usize)> {
    let rest = &s[at..];
    let (source, mut cursor) = if rest.starts_with("$result_total[") {
        (r.total, at + "$result_total".len())
    } else if rest.starts_with("$result_next[") {
        (r.next, at + "$result_next".len())
    } else if rest.starts_with("$result[") {
        (r.result, at + "$result".len())
    } else {
        return None;
    };
    let mut path = Vec::new();
    while let Some(inner) = s[cursor..].strip_prefix('[') {
        let close = inner.find(']')?;
        path.push(inner[..close].to_owned());
        cursor += close + 2;
    }
    let (first, tail) = path.split_first()?;
    let mut value = source.get(first).cloned().unwrap_or(Value::Null);
    for seg in tail {
        value = match (&value, seg.parse::<usize>()) {
            (Value::Array(a), Ok(n)) => a.get(n).cloned().unwrap_or(Value::Null),
            (Value::Object(m), _) => m.get(seg).cloned().unwrap_or(Value::Null),
            _ => Value::Null,
        };
    }
    Some((value, cursor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_take_values_or_fill_text() {
        let mut result = Map::new();
        result.insert("p".into(), json!(410));
        result.insert("l".into(), json!([{"ID": "7", "NAME": "A"}]));
        let (total, next) = (Map::new(), Map::new());
        let r = Results { result: &result, total: &total, next: &next };
        let mut v = json!({"id": "$result[p]", "f": {"TITLE": "Deal for $result[l][0][NAME] #$result[p]"},
                           "x": "$result[l][0][ID]", "gone": "$result[none][0]"});
        substitute(&mut v, &r);
        assert_eq!(v, json!({"id": 410, "f": {"TITLE": "Deal for A #410"}, "x": "7", "gone": null}));
    }

    #[test]
    fn commands_over_fifty_are_refused() {
        let cmd: Map<String, Value> = (0..51).map(|i| (format!("c{i}"), json!("crm.product.list"))).collect();
        let mut p = Map::new();
        p.insert("cmd".into(), Value::Object(cmd));
        assert_eq!(commands(&p).unwrap_err().code, "ERROR_BATCH_LENGTH_EXCEEDED");
    }
}
