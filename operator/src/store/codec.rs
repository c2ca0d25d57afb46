//! Column encodings shared by every table: lower-case `0x` hex for addresses, hashes and byte
//! strings, decimal text for amounts and uint256 numbers, UUID text for ids, JSON text.

use std::str::FromStr;

use alloy::primitives::{Address, B256, Bytes, U256};
use sqlx::any::{AnyArguments, AnyQueryResult, AnyRow};
use sqlx::{Any, AnyConnection, Executor, Row};
use uuid::Uuid;

use super::{Result, StoreError};

/// `0x…` lower-case hex of an address (no checksum casing).
pub(crate) fn addr(a: &Address) -> String {
    format!("{a:#x}")
}

/// `0x…` lower-case hex of a 32-byte hash.
pub(crate) fn b256(h: &B256) -> String {
    format!("{h:#x}")
}

/// `0x…` lower-case hex of a byte string.
pub(crate) fn bytes(b: &Bytes) -> String {
    format!("{b:#x}")
}

/// Text form of a UUID.
pub(crate) fn uuid(u: &Uuid) -> String {
    u.hyphenated().to_string()
}

/// A `u64` that must fit an `i64` column (block numbers, nonces, chain ids, expiries).
pub(crate) fn int(v: u64) -> i64 {
    // Every value stored this way is far below 2^63 (block numbers, uint48 times, nonces); clamp
    // rather than wrap if a caller ever passes something absurd.
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn decode_err(column: &'static str, message: impl ToString) -> StoreError {
    StoreError::Decode {
        column,
        message: message.to_string(),
    }
}

pub(crate) fn get_str(row: &AnyRow, col: &'static str) -> Result<String> {
    row.try_get::<String, _>(col)
        .map_err(|e| decode_err(col, e))
}

pub(crate) fn get_opt_str(row: &AnyRow, col: &'static str) -> Result<Option<String>> {
    row.try_get::<Option<String>, _>(col)
        .map_err(|e| decode_err(col, e))
}

pub(crate) fn get_i64(row: &AnyRow, col: &'static str) -> Result<i64> {
    row.try_get::<i64, _>(col).map_err(|e| decode_err(col, e))
}

pub(crate) fn get_opt_i64(row: &AnyRow, col: &'static str) -> Result<Option<i64>> {
    row.try_get::<Option<i64>, _>(col)
        .map_err(|e| decode_err(col, e))
}

pub(crate) fn get_u64(row: &AnyRow, col: &'static str) -> Result<u64> {
    let v = get_i64(row, col)?;
    u64::try_from(v).map_err(|e| decode_err(col, e))
}

pub(crate) fn get_opt_u64(row: &AnyRow, col: &'static str) -> Result<Option<u64>> {
    get_opt_i64(row, col)?
        .map(|v| u64::try_from(v).map_err(|e| decode_err(col, e)))
        .transpose()
}

pub(crate) fn get_bool(row: &AnyRow, col: &'static str) -> Result<bool> {
    Ok(get_i64(row, col)? != 0)
}

pub(crate) fn parse<T: FromStr>(col: &'static str, s: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>()
        .map_err(|e| decode_err(col, format!("{e}: {s:?}")))
}

pub(crate) fn get_parsed<T: FromStr>(row: &AnyRow, col: &'static str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    parse(col, &get_str(row, col)?)
}

pub(crate) fn get_opt_parsed<T: FromStr>(row: &AnyRow, col: &'static str) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    get_opt_str(row, col)?.map(|s| parse(col, &s)).transpose()
}

pub(crate) fn get_addr(row: &AnyRow, col: &'static str) -> Result<Address> {
    get_parsed(row, col)
}

pub(crate) fn get_b256(row: &AnyRow, col: &'static str) -> Result<B256> {
    get_parsed(row, col)
}

pub(crate) fn get_opt_b256(row: &AnyRow, col: &'static str) -> Result<Option<B256>> {
    get_opt_parsed(row, col)
}

pub(crate) fn get_bytes(row: &AnyRow, col: &'static str) -> Result<Bytes> {
    get_parsed(row, col)
}

pub(crate) fn get_uuid(row: &AnyRow, col: &'static str) -> Result<Uuid> {
    get_parsed(row, col)
}

pub(crate) fn get_opt_uuid(row: &AnyRow, col: &'static str) -> Result<Option<Uuid>> {
    get_opt_parsed(row, col)
}

pub(crate) fn get_u128(row: &AnyRow, col: &'static str) -> Result<u128> {
    get_parsed(row, col)
}

pub(crate) fn get_opt_u128(row: &AnyRow, col: &'static str) -> Result<Option<u128>> {
    get_opt_parsed(row, col)
}

/// A uint256 stored as decimal text.
pub(crate) fn get_u256(row: &AnyRow, col: &'static str) -> Result<U256> {
    let s = get_str(row, col)?;
    U256::from_str_radix(&s, 10).map_err(|e| decode_err(col, format!("{e}: {s:?}")))
}

pub(crate) fn get_json(row: &AnyRow, col: &'static str) -> Result<serde_json::Value> {
    let s = get_str(row, col)?;
    serde_json::from_str(&s).map_err(|e| decode_err(col, e))
}

/// JSON text of `value`, for column `col`.
pub(crate) fn json<T: serde::Serialize + ?Sized>(col: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| decode_err(col, e))
}

/// `Deref` / `DerefMut` from `$ty` to its (public) field `$field`: a stored row reads the
/// fields it was written with as its own.
macro_rules! deref_to {
    ($ty:ty => $field:ident: $target:ty) => {
        impl ::std::ops::Deref for $ty {
            type Target = $target;

            fn deref(&self) -> &$target {
                &self.$field
            }
        }

        impl ::std::ops::DerefMut for $ty {
            fn deref_mut(&mut self) -> &mut $target {
                &mut self.$field
            }
        }
    };
}
pub(crate) use deref_to;

/// True when `e` is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// Turns a unique violation into [`StoreError::Conflict`], anything else into `Database`.
pub(crate) fn conflict_or(
    e: sqlx::Error,
    entity: &'static str,
    detail: impl ToString,
) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict {
            entity,
            detail: detail.to_string(),
        }
    } else {
        StoreError::Database(e)
    }
}

/// A statement over the `Any` driver, its parameters bound by value.
pub(crate) type AnyQuery = sqlx::query::Query<'static, Any, AnyArguments>;

/// The rows of one table as a type: which columns it reads and how one row decodes.
pub(crate) trait Record: Sized {
    /// The table.
    const TABLE: &'static str;
    /// The columns [`Record::decode`] reads, for `SELECT` and `RETURNING` lists.
    const COLUMNS: &'static str;
    /// What a missing row is called in [`StoreError::NotFound`].
    const ENTITY: &'static str;

    /// Decodes one row.
    fn decode(row: &AnyRow) -> Result<Self>;
}

/// `SELECT {R::COLUMNS} FROM {R::TABLE} {rest}` (`rest`: the `WHERE` / `ORDER BY` / `LIMIT`
/// clauses), ready to bind.
pub(crate) fn select<R: Record>(rest: &str) -> AnyQuery {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM {} {rest}",
        R::COLUMNS,
        R::TABLE
    )))
}

/// `{statement} RETURNING {R::COLUMNS}`, ready to bind.
pub(crate) fn returning<R: Record>(statement: &str) -> AnyQuery {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{statement} RETURNING {}",
        R::COLUMNS
    )))
}

/// `$1, $2, …, $n`, starting at `$first`: a parameter list for `IN (…)`.
pub(crate) fn parameters(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, $2), ($3, $4), …`: `rows` rows of `columns` parameters, for a multi-row `VALUES`.
pub(crate) fn value_rows(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", parameters(1 + r * columns, columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `R::COLUMNS`, each qualified with `alias` (`t.id, t.chain_id, …`), for joins.
pub(crate) fn qualified<R: Record>(alias: &str) -> String {
    R::COLUMNS
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every row `query` yields, decoded.
pub(crate) async fn fetch_all<'c, R: Record>(
    query: AnyQuery,
    executor: impl Executor<'c, Database = Any>,
) -> Result<Vec<R>> {
    query
        .fetch_all(executor)
        .await?
        .iter()
        .map(R::decode)
        .collect()
}

/// The row `query` yields, decoded, if any.
pub(crate) async fn fetch_optional<'c, R: Record>(
    query: AnyQuery,
    executor: impl Executor<'c, Database = Any>,
) -> Result<Option<R>> {
    query
        .fetch_optional(executor)
        .await?
        .as_ref()
        .map(R::decode)
        .transpose()
}

/// The row `query` yields, decoded; [`StoreError::NotFound`] naming `R::ENTITY` and `key` when
/// there is none.
pub(crate) async fn fetch_found<'c, R: Record>(
    query: AnyQuery,
    executor: impl Executor<'c, Database = Any>,
    key: impl ToString,
) -> Result<R> {
    fetch_optional(query, executor)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            entity: R::ENTITY,
            key: key.to_string(),
        })
}

/// The row of `R`'s table keyed by `(chain_id, address)` (a signer, an indexer cursor), if any.
pub(crate) async fn by_chain_address<'c, R: Record>(
    executor: impl Executor<'c, Database = Any>,
    chain_id: u64,
    address: &Address,
) -> Result<Option<R>> {
    let query = select::<R>("WHERE chain_id = $1 AND address = $2")
        .bind(int(chain_id))
        .bind(addr(address));
    fetch_optional(query, executor).await
}

/// The row of `R`'s table whose `id` is `id`; [`StoreError::NotFound`] naming `R::ENTITY` when
/// there is none.
pub(crate) async fn get_by_id<R: Record>(conn: &mut AnyConnection, id: Uuid) -> Result<R> {
    fetch_found(select::<R>("WHERE id = $1").bind(uuid(&id)), conn, id).await
}

/// `Ok(())` when the statement changed a row, else [`StoreError::NotFound`] naming `entity` and
/// `key` (an `UPDATE … WHERE <key>` that matched nothing).
pub(crate) fn affected(
    done: &AnyQueryResult,
    entity: &'static str,
    key: impl ToString,
) -> Result<()> {
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            entity,
            key: key.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_forms_are_lowercase_prefixed() {
        let a: Address = "0xAbCdEf0000000000000000000000000000000001"
            .parse()
            .unwrap();
        assert_eq!(addr(&a), "0xabcdef0000000000000000000000000000000001");
        let h = B256::repeat_byte(0xAB);
        assert_eq!(b256(&h), format!("0x{}", "ab".repeat(32)));
        assert_eq!(bytes(&Bytes::from(vec![0xDE, 0xAD])), "0xdead");
        assert_eq!(bytes(&Bytes::new()), "0x");
        assert_eq!("0x".parse::<Bytes>().unwrap(), Bytes::new());
        let u = U256::MAX;
        assert_eq!(U256::from_str_radix(&u.to_string(), 10).unwrap(), u);
    }
}
