//! Numbered parameter lists for statements that write many rows at once. `sqlx::QueryBuilder`
//! cannot write them here: over the `Any` driver it writes `?` placeholders, which PostgreSQL
//! refuses, while `$n` serves both PostgreSQL and SQLite.

/// `($1, $2), ($3, $4)`: `rows` tuples of `width` parameters each, numbered from `$1`.
pub fn tuples(rows: usize, width: usize) -> String {
    let tuple = |r: usize| {
        let params: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
        format!("({})", params.join(", "))
    };
    (0..rows).map(tuple).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn tuples_number_their_parameters_across_rows() {
        assert_eq!(super::tuples(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(super::tuples(1, 1), "($1)");
        assert_eq!(super::tuples(0, 4), "");
    }
}
