//! Statements built with their values, whose placeholders are numbered as the values are bound:
//! multi-row `VALUES` lists and optional filters. `sqlx::QueryBuilder` does this job, but over
//! the `Any` driver every service's pool uses it writes `?` placeholders, which PostgreSQL
//! refuses, while `$n` serves PostgreSQL and SQLite alike.

use sqlx::{
    Any, Arguments, Encode, Type,
    any::AnyArguments,
    query::{Query, QueryAs, QueryScalar},
};

/// `($1, $2), ($3, $4)`: `rows` tuples of `width` parameters each, numbered from `$1`.
pub fn tuples(rows: usize, width: usize) -> String {
    let tuple = |r: usize| {
        let params: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
        format!("({})", params.join(", "))
    };
    (0..rows).map(tuple).collect::<Vec<_>>().join(", ")
}

/// SQL text and the values of its placeholders, in order.
#[derive(Default)]
pub struct Statement {
    sql: String,
    args: AnyArguments,
}

impl Statement {
    pub fn new(sql: impl Into<String>) -> Self {
        Self { sql: sql.into(), args: AnyArguments::default() }
    }

    /// Appends SQL text (never a caller's value: those are bound).
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Binds `value` and writes its placeholder.
    pub fn bind<'t, T: Encode<'t, Any> + Type<Any>>(&mut self, value: T) -> &mut Self {
        // Encoding the Any driver's own value types cannot fail.
        self.args.add(value).expect("a value the Any driver encodes");
        self.sql.push('$');
        self.sql.push_str(&self.args.len().to_string());
        self
    }

    /// `VALUES (…), (…)`: one tuple per item of `rows`, written by `tuple`.
    pub fn values<I: IntoIterator>(&mut self, rows: I, mut tuple: impl FnMut(&mut Tuple<'_>, I::Item)) -> &mut Self {
        self.sql.push_str("VALUES ");
        for (i, row) in rows.into_iter().enumerate() {
            self.sql.push_str(if i == 0 { "(" } else { ", (" });
            tuple(&mut Tuple { statement: self, first: true }, row);
            self.sql.push(')');
        }
        self
    }

    #[cfg(test)]
    fn sql(&self) -> &str {
        &self.sql
    }

    pub fn query(self) -> Query<'static, Any, AnyArguments> {
        sqlx::query_with(sqlx::AssertSqlSafe(self.sql), self.args)
    }

    pub fn query_as<O: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>>(self) -> QueryAs<'static, Any, O, AnyArguments> {
        sqlx::query_as_with(sqlx::AssertSqlSafe(self.sql), self.args)
    }

    pub fn query_scalar<O>(self) -> QueryScalar<'static, Any, O, AnyArguments>
    where
        (O,): for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        sqlx::query_scalar_with(sqlx::AssertSqlSafe(self.sql), self.args)
    }
}

/// One tuple of a `VALUES` list.
pub struct Tuple<'a> {
    statement: &'a mut Statement,
    first: bool,
}

impl Tuple<'_> {
    /// Binds the next value of the tuple.
    pub fn bind<'t, T: Encode<'t, Any> + Type<Any>>(&mut self, value: T) -> &mut Self {
        if !self.first {
            self.statement.push(", ");
        }
        self.first = false;
        self.statement.bind(value);
        self
    }

    /// Casts the value just bound (`::text`): PostgreSQL needs the types of a `VALUES` list that
    /// does not go straight into a table.
    pub fn cast(&mut self, ty: &str) -> &mut Self {
        self.statement.push(ty);
        self
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tuples_number_their_parameters_across_rows() {
        assert_eq!(super::tuples(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(super::tuples(1, 1), "($1)");
        assert_eq!(super::tuples(0, 4), "");
    }

    use super::*;

    #[test]
    fn placeholders_are_numbered_across_tuples_and_clauses() {
        let mut s = Statement::new("INSERT INTO t (a, b) ");
        s.values([(1_i64, "x"), (2, "y")], |t, (a, b)| {
            t.bind(a).cast("::bigint").bind(b);
        });
        s.push(" WHERE c = ").bind("z");
        assert_eq!(s.sql(), "INSERT INTO t (a, b) VALUES ($1::bigint, $2), ($3::bigint, $4) WHERE c = $5");
    }
}
