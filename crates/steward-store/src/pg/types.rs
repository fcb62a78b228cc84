//! [`Val`] and [`Row`] on the PostgreSQL wire: each value is sent as the type the server
//! inferred for its placeholder, and each column read by its type.

use bytes::BytesMut;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use crate::db::{DbError, Row, Val};

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for Val {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Val::Null => Ok(IsNull::Yes),
            Val::Int(n) => match *ty {
                Type::INT8 => n.to_sql(ty, out),
                Type::INT4 => i32::try_from(*n)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*n)?.to_sql(ty, out),
                Type::FLOAT8 => (*n as f64).to_sql(ty, out),
                Type::BOOL => (*n != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => n.to_string().to_sql(ty, out),
                _ => Err(format!("an integer cannot be sent as {ty}").into()),
            },
            Val::Real(f) => match *ty {
                Type::FLOAT8 => f.to_sql(ty, out),
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => f.to_string().to_sql(ty, out),
                _ => Err(format!("a number cannot be sent as {ty}").into()),
            },
            Val::Text(s) => match *ty {
                Type::INT8 => s.parse::<i64>()?.to_sql(ty, out),
                Type::BYTEA => s.as_bytes().to_sql(ty, out),
                _ => s.as_str().to_sql(ty, out),
            },
            Val::Blob(b) => match *ty {
                Type::BYTEA => b.as_slice().to_sql(ty, out),
                _ => Err(format!("bytes cannot be sent as {ty}").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A row, by its columns' types.
pub(crate) fn row_of(r: &tokio_postgres::Row) -> Result<Row, DbError> {
    let bad = |i: usize, e: tokio_postgres::Error| DbError::Postgres(format!("column {i}: {e}"));
    let mut out = Vec::with_capacity(r.len());
    for (i, col) in r.columns().iter().enumerate() {
        let v = match *col.type_() {
            Type::INT8 => r.try_get::<_, Option<i64>>(i).map_err(|e| bad(i, e))?.map(Val::Int),
            Type::INT4 => r
                .try_get::<_, Option<i32>>(i)
                .map_err(|e| bad(i, e))?
                .map(|n| Val::Int(n.into())),
            Type::INT2 => r
                .try_get::<_, Option<i16>>(i)
                .map_err(|e| bad(i, e))?
                .map(|n| Val::Int(n.into())),
            Type::BOOL => r
                .try_get::<_, Option<bool>>(i)
                .map_err(|e| bad(i, e))?
                .map(|b| Val::Int(b.into())),
            Type::FLOAT8 => r.try_get::<_, Option<f64>>(i).map_err(|e| bad(i, e))?.map(Val::Real),
            Type::FLOAT4 => r
                .try_get::<_, Option<f32>>(i)
                .map_err(|e| bad(i, e))?
                .map(|f| Val::Real(f.into())),
            Type::BYTEA => r
                .try_get::<_, Option<Vec<u8>>>(i)
                .map_err(|e| bad(i, e))?
                .map(Val::Blob),
            Type::VOID => None,
            Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR | Type::UNKNOWN => {
                r.try_get::<_, Option<String>>(i).map_err(|e| bad(i, e))?.map(Val::Text)
            }
            ref other => {
                return Err(DbError::Postgres(format!(
                    "column {i} ({}) has type {other}, which Steward does not read",
                    col.name()
                )));
            }
        };
        out.push(v.unwrap_or(Val::Null));
    }
    Ok(Row(out))
}
