//! The transform engine: how one product field's value becomes a target field's value, and how a
//! two-way mapping undoes it. Pure functions over JSON values (no storage, no gRPC), so every rule
//! is unit-tested here.
//!
//! A field mapping reads its Bling field (a dotted path into the product JSON; absent and `null`
//! are the same), applies its transforms in order and writes the target field; a value that ends
//! absent writes nothing. The reverse direction reads the target field, applies the inverse of each
//! transform in reverse order and writes the Bling field.

mod check;
mod decimal;
mod eval;
mod kinds;
#[cfg(test)]
mod tests;

pub use check::{check_invertible, check_path, validate};
pub use decimal::{decimal_to_json, format_decimal, parse_decimal};
pub use eval::{Path, Rule, ValueError, forward, inverse};
pub use kinds::{
    Concatenate, MAX_DECIMALS, MAX_PATH_CHARS, MAX_TEXT_CHARS, MAX_TRANSFORMS, MAX_VALUE_MAP_ENTRIES, NumberFormat,
    Text, Transform, Truncate, ValueMap,
};
