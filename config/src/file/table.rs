//! Reading a TOML table with spans: typed getters that report every problem with its
//! place, and unknown keys with "did you mean".
//!
//! Why not `serde` with `deny_unknown_fields`: serde stops at the first error, and we owe
//! the user every error of a file at once. So the file is parsed into `toml`'s spanned
//! document (`DeTable`) and walked here; each getter records the key it was asked for,
//! and [`Table::finish`] reports every key nobody asked for, suggesting the nearest one.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diagnostic::{Diagnostic, Diagnostics, SourceFile, SourceSpan, unknown_name_help};
use crate::provenance::{Origin, Sourced};
use crate::value::{Code, InvalidValue, parse_duration, parse_optional_duration};

/// The file being read and the diagnostics found so far.
pub(crate) struct Reader {
    pub(crate) file: Arc<SourceFile>,
    pub(crate) diagnostics: Diagnostics,
}

/// A value found under a key, with the key's full dotted path for messages.
pub(crate) struct Field<'a, 'i> {
    pub(crate) path: String,
    pub(crate) key: &'static str,
    pub(crate) value: &'a Spanned<DeValue<'i>>,
}

impl Field<'_, '_> {
    pub(crate) fn span(&self) -> Range<usize> {
        self.value.span()
    }
}

/// A table being read: which keys were asked for, to report the others.
pub(crate) struct Table<'a, 'i> {
    pub(crate) entries: &'a DeTable<'i>,
    pub(crate) path: String,
    asked: Vec<&'static str>,
}

impl<'a, 'i> Table<'a, 'i> {
    pub(crate) fn new(entries: &'a DeTable<'i>, path: impl Into<String>) -> Self {
        Self {
            entries,
            path: path.into(),
            asked: Vec::new(),
        }
    }

    /// The value under `key`, if present; remembers that `key` is a known key.
    pub(crate) fn get(&mut self, key: &'static str) -> Option<Field<'a, 'i>> {
        self.asked.push(key);
        self.entries.get(key).map(|value| Field {
            path: self.child_path(key),
            key,
            value,
        })
    }

    /// The keys asked for so far.
    pub(crate) fn asked(&self) -> &[&'static str] {
        &self.asked
    }

    /// Marks keys as known without reading them (read elsewhere).
    pub(crate) fn known(&mut self, keys: &[&'static str]) {
        self.asked.extend_from_slice(keys);
    }

    /// How messages name this table: `` `targets.payments` ``, or "the attribute" for the
    /// arguments of `#[ephemos::client]` (read as a table without a path).
    pub(crate) fn name(&self) -> String {
        if self.path.is_empty() {
            "the attribute".to_owned()
        } else {
            format!("`{}`", self.path)
        }
    }

    pub(crate) fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Reports every key that was never asked for.
    pub(crate) fn finish(self, reader: &mut Reader) {
        for (key, _) in self.entries.iter() {
            let name: &str = key.get_ref();
            if self.asked.contains(&name) {
                continue;
            }
            let where_ = if self.path.is_empty() {
                "here".to_owned()
            } else {
                format!("in `{}`", self.path)
            };
            let help = unknown_name_help(name, self.asked.iter().copied());
            reader.push(
                Diagnostic::error(format!("unknown key `{name}` {where_}"))
                    .with_label("not a setting ephemos knows")
                    .with_help(help),
                key.span(),
            );
        }
    }
}

fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

impl Reader {
    pub(crate) fn new(file: SourceFile) -> Self {
        Self {
            file: Arc::new(file),
            diagnostics: Diagnostics::default(),
        }
    }

    pub(crate) fn span(&self, range: Range<usize>) -> SourceSpan {
        SourceSpan {
            range: self.file.clamp(range),
            file: self.file.clone(),
        }
    }

    pub(crate) fn origin(&self, range: Range<usize>) -> Origin {
        Origin::File(self.span(range))
    }

    pub(crate) fn sourced<T>(&self, value: T, field: &Field<'_, '_>) -> Sourced<T> {
        Sourced::new(value, self.origin(field.span()))
    }

    /// Records a diagnostic at `range`; the same diagnostic at the same place (a value
    /// inherited by several targets, say) is recorded once.
    pub(crate) fn push(&mut self, diagnostic: Diagnostic, range: Range<usize>) {
        let span = self.span(range);
        self.push_at(diagnostic, span);
    }

    /// Records a diagnostic at a place that may be in another source (an attribute).
    pub(crate) fn push_at(&mut self, diagnostic: Diagnostic, span: SourceSpan) {
        let diagnostic = diagnostic.at(span);
        if !self.diagnostics.iter().any(|d| *d == diagnostic) {
            self.diagnostics.push(diagnostic);
        }
    }

    /// Reports an invalid value of a field.
    pub(crate) fn invalid(&mut self, field: &Field<'_, '_>, e: InvalidValue) {
        self.push(
            Diagnostic::error(format!("invalid value for `{}`", field.path))
                .with_label(e.problem)
                .with_help(e.help),
            field.span(),
        );
    }

    /// Reports a value of the wrong type.
    pub(crate) fn wrong_type(&mut self, field: &Field<'_, '_>, expected: &str, example: &str) {
        let found = type_name(field.value.get_ref());
        self.push(
            Diagnostic::error(format!("`{}` must be {expected}", field.path))
                .with_label(format!("found {found}"))
                .with_help(if example.starts_with("a ") || example.starts_with('[') {
                    format!("use {example}")
                } else {
                    format!("write {} = {example}", field.key)
                }),
            field.span(),
        );
    }

    pub(crate) fn string<'v>(
        &mut self,
        field: &'v Field<'_, '_>,
        example: &str,
    ) -> Option<&'v str> {
        match field.value.get_ref() {
            DeValue::String(s) => Some(s),
            _ => {
                self.wrong_type(field, &format!("a string such as {example}"), example);
                None
            }
        }
    }

    pub(crate) fn boolean(&mut self, field: &Field<'_, '_>) -> Option<Sourced<bool>> {
        match field.value.get_ref() {
            DeValue::Boolean(b) => Some(self.sourced(*b, field)),
            _ => {
                self.wrong_type(field, "true or false", "true");
                None
            }
        }
    }

    /// Parses a string field with `parse`.
    pub(crate) fn parsed<T>(
        &mut self,
        field: &Field<'_, '_>,
        example: &str,
        parse: impl FnOnce(&str) -> Result<T, InvalidValue>,
    ) -> Option<Sourced<T>> {
        let text = self.string(field, example)?;
        match parse(text) {
            Ok(value) => Some(self.sourced(value, field)),
            Err(e) => {
                self.invalid(field, e);
                None
            }
        }
    }

    /// A duration that must be greater than `at_least` (exclusive when zero).
    pub(crate) fn duration(
        &mut self,
        field: &Field<'_, '_>,
        at_least: Duration,
    ) -> Option<Sourced<Duration>> {
        let value = self.parsed(field, "\"10s\"", parse_duration)?;
        check_minimum(self, field, value.value, at_least)?;
        Some(value)
    }

    /// A duration, or `"off"` (also `false`) for none.
    pub(crate) fn optional_duration(
        &mut self,
        field: &Field<'_, '_>,
        at_least: Duration,
    ) -> Option<Sourced<Option<Duration>>> {
        if let DeValue::Boolean(false) = field.value.get_ref() {
            return Some(self.sourced(None, field));
        }
        let value = self.parsed(field, "\"10s\" or \"off\"", parse_optional_duration)?;
        if let Some(d) = value.value {
            check_minimum(self, field, d, at_least)?;
        }
        Some(value)
    }

    /// An integer in `range`.
    pub(crate) fn integer(
        &mut self,
        field: &Field<'_, '_>,
        range: std::ops::RangeInclusive<u32>,
        why: &str,
    ) -> Option<Sourced<u32>> {
        let DeValue::Integer(int) = field.value.get_ref() else {
            self.wrong_type(field, "an integer", &range.start().to_string());
            return None;
        };
        let number = i128::from_str_radix(int.as_str(), int.radix()).ok();
        match number
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| range.contains(n))
        {
            Some(n) => Some(self.sourced(n, field)),
            None => {
                self.invalid(
                    field,
                    InvalidValue::new(
                        format!("{int} is out of range"),
                        format!(
                            "`{}` goes from {} to {}: {why}",
                            field.key,
                            range.start(),
                            range.end()
                        ),
                    ),
                );
                None
            }
        }
    }

    /// A number (integer or float) for which `check` returns `Ok`.
    pub(crate) fn number(
        &mut self,
        field: &Field<'_, '_>,
        check: impl FnOnce(f64) -> Result<f64, InvalidValue>,
    ) -> Option<Sourced<f64>> {
        let number = match field.value.get_ref() {
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|n| n as f64),
            _ => {
                self.wrong_type(field, "a number", "1.5");
                return None;
            }
        };
        let checked = number
            .filter(|n| n.is_finite())
            .ok_or_else(|| {
                InvalidValue::new("not a finite number", "write a plain number such as 1.5")
            })
            .and_then(check)
            .and_then(|n| {
                if n.is_finite() {
                    Ok(n)
                } else {
                    Err(InvalidValue::new(
                        "not a finite number",
                        "write a plain number such as 1.5",
                    ))
                }
            });
        match checked {
            Ok(n) => Some(self.sourced(n, field)),
            Err(e) => {
                self.invalid(field, e);
                None
            }
        }
    }

    /// An array whose items `item` reads (reporting its own errors); an empty list
    /// (unless allowed) and an item listed twice are errors too.
    pub(crate) fn list<T: PartialEq>(
        &mut self,
        field: &Field<'_, '_>,
        expected: &str,
        example: &str,
        may_be_empty: bool,
        mut item: impl FnMut(&mut Self, &Field<'_, '_>) -> Option<T>,
    ) -> Option<Sourced<Vec<T>>> {
        let DeValue::Array(items) = field.value.get_ref() else {
            self.wrong_type(field, expected, example);
            return None;
        };
        if items.is_empty() && !may_be_empty {
            let help = format!("list at least one, e.g. {example}");
            self.invalid(field, InvalidValue::new("the list is empty", help));
            return None;
        }
        let mut values = Vec::new();
        let mut valid = true;
        for value in items.iter() {
            let item_field = Field {
                path: field.path.clone(),
                key: field.key,
                value,
            };
            match item(self, &item_field) {
                Some(v) if values.contains(&v) => {
                    valid = false;
                    self.invalid(&item_field, InvalidValue::new("listed twice", "remove one"));
                }
                Some(v) => values.push(v),
                None => valid = false,
            }
        }
        valid.then(|| self.sourced(values, field))
    }

    /// An array of status codes, names or numbers; `OK` and duplicates rejected.
    pub(crate) fn codes(
        &mut self,
        field: &Field<'_, '_>,
        may_be_empty: bool,
    ) -> Option<Sourced<Vec<Code>>> {
        let example = "[\"UNAVAILABLE\"]";
        self.list(
            field,
            "an array of status codes",
            example,
            may_be_empty,
            |r, item| {
                let parsed = match item.value.get_ref() {
                    DeValue::String(s) => Code::parse(s),
                    DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
                        .ok()
                        .and_then(|n| i64::try_from(n).ok())
                        .map_or_else(
                            || Code::parse(&i.to_string()),
                            |n| Code::parse(&n.to_string()),
                        ),
                    _ => Err(InvalidValue::new(
                        "a status code is a name or a number",
                        "write \"UNAVAILABLE\" or 14",
                    )),
                }
                .and_then(|code| match code {
                    Code::Ok => Err(InvalidValue::new(
                        "`OK` cannot be listed",
                        "a successful call is never retried; remove it",
                    )),
                    code => Ok(code),
                });
                parsed.map_err(|e| r.invalid(item, e)).ok()
            },
        )
    }

    /// The entries of a table value, or a type error.
    pub(crate) fn table<'a, 'i>(
        &mut self,
        field: &Field<'a, 'i>,
        example: &str,
    ) -> Option<Table<'a, 'i>> {
        match field.value.get_ref() {
            DeValue::Table(entries) => Some(Table::new(entries, field.path.clone())),
            _ => {
                self.wrong_type(field, "a table", example);
                None
            }
        }
    }
}

fn check_minimum(
    reader: &mut Reader,
    field: &Field<'_, '_>,
    value: Duration,
    at_least: Duration,
) -> Option<()> {
    match crate::rules::duration_at_least(value, at_least) {
        Ok(()) => Some(()),
        Err(e) => {
            reader.invalid(field, e);
            None
        }
    }
}
