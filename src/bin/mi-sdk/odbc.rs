//! The bridge's [`Database`] over ODBC (odbc-api): Windows' own driver manager, or
//! unixODBC. Text goes to the driver as the platform's ODBC text (UTF-16 on
//! Windows, UTF-8 elsewhere) and is read back as UTF-16, so the driver converts to
//! and from the database's own encoding (a GBK column stays GBK).

use mi_sdk::bridge::{safe_dsn, Database, Param, Row};
use mi_sdk::{Error, Result};
use odbc_api::parameter::InputParameter;
use odbc_api::{Connection, ConnectionOptions, Cursor, Environment, IntoParameter, Nullable, ResultSetMetadata};
use std::sync::OnceLock;

/// One ODBC environment for the process, as the driver managers expect.
fn environment() -> Result<&'static Environment> {
    static ENV: OnceLock<std::result::Result<Environment, String>> = OnceLock::new();
    ENV.get_or_init(|| Environment::new().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| Error::config(format!("no ODBC driver manager: {e}")))
}

pub struct Odbc {
    conn: Connection<'static>,
    /// Every statement's bound (`SQL_ATTR_QUERY_TIMEOUT`), once set.
    timeout: Option<usize>,
}

/// A database error, with what the driver said (never the connection string): a
/// value the database refuses to store (SQLSTATE class 22 or 23, or MySQL's 1366 and
/// 1406, which it reports as HY000) is [`mi_sdk::bridge::REFUSED`]; anything else may
/// pass (a lost connection, a deadlock, a timeout).
fn db_err(what: &str, e: odbc_api::Error) -> Error {
    let refused = match &e {
        odbc_api::Error::Diagnostics { record, .. } => {
            let state = record.state.as_str();
            state.starts_with("22") || state.starts_with("23") || [1366, 1406].contains(&record.native_error)
        }
        _ => false,
    };
    let code = if refused { mi_sdk::bridge::REFUSED } else { mi_sdk::Code::Network };
    Error::new(code, format!("database: {what}: {e}"))
}

/// The bridge's [`mi_sdk::bridge::Opener`].
pub fn open(dsn: &str) -> Result<Box<dyn Database>> {
    Ok(Box::new(Odbc::connect(dsn)?))
}

impl Odbc {
    pub fn connect(dsn: &str) -> Result<Odbc> {
        let conn = environment()?
            .connect_with_connection_string(
                dsn,
                ConnectionOptions { login_timeout_sec: Some(10), ..Default::default() },
            )
            .map_err(|e| Error::new(mi_sdk::Code::Network, format!("cannot connect to {}: {e}", safe_dsn(dsn))))?;
        conn.set_autocommit(false).map_err(|e| db_err("manual commit", e))?;
        Ok(Odbc { conn, timeout: None })
    }
}

fn bind(params: &[Param]) -> Vec<Box<dyn InputParameter>> {
    params
        .iter()
        .map(|p| -> Box<dyn InputParameter> {
            match p {
                Param::Text(t) => Box::new(t.clone().into_parameter()),
                Param::Int(Some(i)) => Box::new(Nullable::new(*i)),
                Param::Int(None) => Box::new(Nullable::<i64>::null()),
            }
        })
        .collect()
}

/// The first line of a statement, to name it in an error.
fn head(sql: &str) -> String {
    sql.lines().next().unwrap_or("").chars().take(80).collect()
}

impl Database for Odbc {
    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64> {
        let mut stmt = self.conn.preallocate().map_err(|e| db_err("statement", e))?;
        if let Some(t) = self.timeout {
            stmt.set_query_timeout_sec(t).map_err(|e| db_err("query timeout", e))?;
        }
        let bound = bind(params);
        stmt.execute(sql, bound.as_slice()).map_err(|e| db_err(&head(sql), e))?;
        Ok(stmt.row_count().map_err(|e| db_err("row count", e))?.unwrap_or(0) as u64)
    }

    fn query(&mut self, sql: &str, params: &[Param], limit: usize) -> Result<Vec<Row>> {
        let bound = bind(params);
        let mut rows = Vec::new();
        let Some(mut cursor) =
            self.conn.execute(sql, bound.as_slice(), self.timeout).map_err(|e| db_err(&head(sql), e))?
        else {
            return Ok(rows);
        };
        let cols = cursor.num_result_cols().map_err(|e| db_err("columns", e))? as u16;
        let mut buf = Vec::new();
        while rows.len() < limit {
            let Some(mut row) = cursor.next_row().map_err(|e| db_err("fetch", e))? else { break };
            let mut r = Vec::with_capacity(cols.into());
            for c in 1..=cols {
                let present = row.get_wide_text(c, &mut buf).map_err(|e| db_err("read", e))?;
                r.push(present.then(|| String::from_utf16_lossy(&buf)));
            }
            rows.push(r);
        }
        Ok(rows)
    }

    fn commit(&mut self) -> Result<()> {
        self.conn.commit().map_err(|e| db_err("commit", e))
    }

    fn rollback(&mut self) {
        let _ = self.conn.rollback();
    }

    fn set_timeout(&mut self, secs: u32) {
        self.timeout = Some(secs as usize);
    }

    fn dbms(&mut self) -> Result<String> {
        self.conn.database_management_system_name().map_err(|e| db_err("SQL_DBMS_NAME", e))
    }
}
