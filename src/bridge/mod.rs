//! The HIS's own database as the front door: the HIS writes a request row (through
//! `sp_mi_call`), bridge nodes claim rows, run each through the SDK (journaled as
//! every call is) and write the outcome back into the row, which the HIS reads
//! through `v_mi_result`. docs/bridge.md is the HIS developer's and the DBA's guide.
//!
//! The database is reached through [`Database`], which the `mi-sdk` command
//! implements over ODBC: the library itself (the DLL a HIS loads) links no driver
//! manager.
//!
//! One rule keeps a settlement from being sent twice: a row's node writes `sending`
//! (its claim, with a lease on the database's clock) before the SDK may send, and
//! every later change names that node. A row whose lease ran out is taken over:
//! the journal named by the row (`journal_id`) knows whether it was sent, so a node
//! on that journal follows it or sends it; a node on another journal resends only
//! what is safe to resend (queries), and makes anything else `uncertain`, never
//! sent again.

pub mod dialect;
mod node;

pub use dialect::{Dialect, Names, Sql};
pub use node::{node_name, run, serve, Options};

use crate::error::{Error, Result};

/// A value bound to a `?` of a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(Option<String>),
    Int(Option<i64>),
}

/// A row of a query, every column as text (`None` for SQL NULL).
pub type Row = Vec<Option<String>>;

/// One connection to the HIS database, in manual-commit mode.
pub trait Database: Send {
    /// Runs a statement; the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64>;
    /// Runs a query and reads at most `limit` rows.
    fn query(&mut self, sql: &str, params: &[Param], limit: usize) -> Result<Vec<Row>>;
    fn commit(&mut self) -> Result<()>;
    fn rollback(&mut self);
    /// `SQL_DBMS_NAME`: which database this is.
    fn dbms(&mut self) -> Result<String>;
}

/// Opens a new connection (each node thread holds its own).
pub type Connect = dyn Fn() -> Result<Box<dyn Database>> + Send + Sync;

/// The dialect named, else the one the database says it is.
pub fn dialect_of(db: &mut dyn Database, named: Option<Dialect>) -> Result<Dialect> {
    if let Some(d) = named {
        return Ok(d);
    }
    let dbms = db.dbms()?;
    Dialect::of_dbms(&dbms).ok_or_else(|| {
        Error::invalid(format!(
            "the database says it is \"{dbms}\", which the bridge has no SQL for: name one with --dialect \
             (postgres, mysql, sqlserver, oracle)"
        ))
    })
}

/// Installs the bridge's objects; refuses when they are there already.
pub fn install(db: &mut dyn Database, d: Dialect, names: &Names) -> Result<String> {
    let sql = Sql { dialect: d, names: names.clone(), lease_s: 30 };
    if db.query(&sql.probe(), &[], 1).is_ok() {
        db.rollback();
        return Err(Error::invalid(format!(
            "the bridge is installed already ({} exists): `mi-sdk bridge uninstall` first, or choose another --prefix",
            names.table()
        )));
    }
    db.rollback();
    for s in dialect::install(d, names) {
        if let Err(e) = db.execute(&s.sql, &[]).and_then(|_| db.commit()) {
            db.rollback();
            return Err(Error::invalid(format!(
                "installing {} stopped at `{}`: {}; what was made before it stays (`mi-sdk bridge uninstall` removes it)",
                d.name(),
                first_line(&s.sql),
                e.message
            )));
        }
    }
    Ok(format!(
        "installed ({}): table {}, {}, procedures {} and {}, view {}",
        d.name(),
        names.table(),
        names.meta(),
        names.call(),
        names.call_wait(),
        names.view()
    ))
}

/// Removes the bridge's objects, with the requests; refuses while requests are
/// unfinished unless `force`.
pub fn uninstall(db: &mut dyn Database, d: Dialect, names: &Names, force: bool) -> Result<String> {
    let sql = Sql { dialect: d, names: names.clone(), lease_s: 30 };
    if !force {
        if let Ok(rows) = db.query(&sql.unfinished(), &[], 1) {
            let n: i64 = rows.first().and_then(|r| r[0].as_deref()).and_then(|v| v.parse().ok()).unwrap_or(0);
            if n > 0 {
                db.rollback();
                return Err(Error::invalid(format!(
                    "{n} requests in {} are not finished (new or sending): stop the HIS and let the bridge finish \
                     them, or uninstall with --force (they are dropped unsent or unanswered)",
                    names.table()
                )));
            }
        }
    }
    db.rollback();
    let mut gone = Vec::new();
    for s in dialect::uninstall(d, names) {
        match db.execute(&s.sql, &[]).and_then(|_| db.commit()) {
            Ok(_) => gone.push(first_line(&s.sql).to_string()),
            // Oracle has no IF EXISTS: an object already gone is not an error there.
            Err(e) if d == Dialect::Oracle && (e.message.contains("ORA-04043") || e.message.contains("ORA-00942")) => {
                db.rollback()
            }
            Err(e) => {
                db.rollback();
                return Err(Error::invalid(format!("uninstall stopped at `{}`: {}", first_line(&s.sql), e.message)));
            }
        }
    }
    Ok(format!("uninstalled ({}): {}", d.name(), gone.join("; ")))
}

fn first_line(sql: &str) -> &str {
    sql.lines().next().unwrap_or("")
}

/// A connection string as it may be shown: passwords replaced.
pub fn safe_dsn(dsn: &str) -> String {
    dsn.split(';')
        .map(|part| match part.split_once('=') {
            Some((k, _)) if ["pwd", "password"].contains(&k.trim().to_ascii_lowercase().as_str()) => {
                format!("{}=***", k)
            }
            _ => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_shown() {
        assert_eq!(safe_dsn("Driver={X};Server=h;UID=a;PWD=s3cret;"), "Driver={X};Server=h;UID=a;PWD=***;");
        assert_eq!(safe_dsn("DSN=his;Password=p"), "DSN=his;Password=***");
    }
}
