//! The console's forms: a POST form builder with labelled fields (secrets as password inputs
//! that are never filled back), and the checks of what a form sent, each error naming its field.

use std::{collections::HashMap, fmt::Write as _};

use super::{Ctx, Page, esc};

/// A POST form under the tenant's pages, built field by field; every input has its label.
pub(crate) struct FormHtml {
    html: String,
    id: String,
}

impl FormHtml {
    fn field_id(&self, name: &str) -> String {
        format!("{}-{name}", self.id)
    }

    fn labelled(&mut self, name: &str, label: &str, input: &str) {
        let id = self.field_id(name);
        let _ = write!(self.html, "<label for=\"{id}\">{}</label>{}", esc(label), input.replace("{id}", &id));
    }

    /// A required text input.
    pub fn text(mut self, name: &str, label: &str) -> Self {
        let input = format!("<input id=\"{{id}}\" name=\"{name}\" required maxlength=\"200\">");
        self.labelled(name, label, &input);
        self
    }

    /// A text input that may be left empty.
    pub fn optional_text(mut self, name: &str, label: &str) -> Self {
        let input = format!("<input id=\"{{id}}\" name=\"{name}\" maxlength=\"200\">");
        self.labelled(name, label, &input);
        self
    }

    /// A required text input with a value already.
    pub fn text_value(mut self, name: &str, label: &str, value: &str) -> Self {
        let input =
            format!("<input id=\"{{id}}\" name=\"{name}\" value=\"{}\" required maxlength=\"200\">", esc(value));
        self.labelled(name, label, &input);
        self
    }

    /// A required positive whole number.
    pub fn number(mut self, name: &str, label: &str) -> Self {
        let input = format!("<input id=\"{{id}}\" name=\"{name}\" inputmode=\"numeric\" pattern=\"[0-9]+\" required>");
        self.labelled(name, label, &input);
        self
    }

    /// A secret: a password input, never filled back.
    pub fn secret(mut self, name: &str, label: &str) -> Self {
        let input = format!(
            "<input id=\"{{id}}\" name=\"{name}\" type=\"password\" autocomplete=\"off\" required maxlength=\"200\">"
        );
        self.labelled(name, label, &input);
        self
    }

    /// A choice among `options` (value, label).
    pub fn select(mut self, name: &str, label: &str, options: &[(&str, &str)]) -> Self {
        let mut input = format!("<select id=\"{{id}}\" name=\"{name}\">");
        for (v, l) in options {
            let _ = write!(input, "<option value=\"{}\">{}</option>", esc(v), esc(l));
        }
        input.push_str("</select>");
        self.labelled(name, label, &input);
        self
    }

    /// A hidden value.
    pub fn hidden(mut self, name: &str, value: &str) -> Self {
        let _ = write!(self.html, "<input type=\"hidden\" name=\"{name}\" value=\"{}\">", esc(value));
        self
    }

    /// A checkbox, sent as `on` when checked.
    pub fn checkbox(mut self, name: &str, label: &str, checked: bool) -> Self {
        let id = self.field_id(name);
        let checked = if checked { " checked" } else { "" };
        let _ = write!(
            self.html,
            "<div class=\"check\"><input type=\"checkbox\" id=\"{id}\" name=\"{name}\"{checked}><label for=\"{id}\">{}</label></div>",
            esc(label)
        );
        self
    }

    /// The form's HTML with its submit button.
    pub fn submit(mut self, label: &str) -> String {
        let _ = write!(self.html, "<button type=\"submit\">{}</button></form>", esc(label));
        self.html
    }
}

impl Ctx {
    /// A form posting to `action` under the tenant, under the heading `title` when not empty;
    /// `id` prefixes its fields' ids (unique per page).
    pub fn form(&self, action: &str, id: &str, title: &str) -> FormHtml {
        let title = if title.is_empty() { String::new() } else { format!("<h2>{}</h2>", esc(title)) };
        FormHtml {
            html: format!(
                "{title}<form method=\"post\" action=\"{}/{action}\" class=\"stack\" id=\"{}\">{}",
                self.base(),
                esc(id),
                self.hidden()
            ),
            id: id.to_owned(),
        }
    }

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

    /// A field that must be one of `options` (value → what it means).
    pub fn choice<T: Copy>(
        &self,
        form: &HashMap<String, String>,
        name: &str,
        options: &[(&str, T)],
    ) -> Result<T, Page> {
        let v = self.field(form, name)?;
        options.iter().find(|(k, _)| *k == v).map(|(_, t)| *t).ok_or_else(|| {
            let allowed: Vec<&str> = options.iter().map(|(k, _)| *k).collect();
            let why = format!("{} {}", self.lang.pick("deve ser um de:", "must be one of:"), allowed.join(", "));
            Page::bad_field(self.lang, name, &why)
        })
    }
}

/// Whether a checkbox was checked.
pub(crate) fn checked(form: &HashMap<String, String>, name: &str) -> bool {
    form.get(name).is_some_and(|v| v == "on" || v == "true")
}
