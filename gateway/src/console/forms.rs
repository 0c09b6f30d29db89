//! The checks of what a form sent, each error naming its field.

use std::collections::HashMap;

use super::{Ctx, Page};

impl Ctx {
    /// A text field of a form, trimmed; `Err` a page naming it when it is missing or too long.
    pub fn field<'a>(&self, form: &'a HashMap<String, String>, name: &str) -> Result<&'a str, Page> {
        let lang = self.lang;
        let v = form.get(name).map(|s| s.trim()).unwrap_or("");
        if v.is_empty() {
            return Err(Page::bad_field(lang, name, lang.pick("obrigatório", "required")));
        }
        if v.len() > 200 {
            return Err(Page::bad_field(lang, name, lang.pick("longo demais (máx. 200)", "too long (at most 200)")));
        }
        Ok(v)
    }

    /// A positive whole number field.
    pub fn id_field(&self, form: &HashMap<String, String>, name: &str) -> Result<i64, Page> {
        match self.field(form, name)?.parse::<i64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(Page::bad_field(
                self.lang,
                name,
                self.lang.pick("deve ser um número inteiro positivo", "must be a positive whole number"),
            )),
        }
    }
}
