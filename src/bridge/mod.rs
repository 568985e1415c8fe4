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
pub use node::{dsn_of, node_name, options, run, serve, serve_until, Options, Overrides};

pub use crate::config::safe_dsn;
use crate::error::{Error, Result};

/// The code of a [`Database`] error that is a value the database refuses to store
/// (a character its column's encoding lacks, a text too long), as opposed to a
/// database that cannot be reached now.
pub const REFUSED: crate::error::Code = crate::error::Code::Protocol;

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
    /// Bounds every later statement to `secs` (a hung connection must not outlast
    /// a lease unseen).
    fn set_timeout(&mut self, _secs: u32) {}
}

/// Opens a new connection (each node thread holds its own).
pub type Connect = dyn Fn() -> Result<Box<dyn Database>> + Send + Sync;

/// Opens a connection by its connection string: what the `mi-sdk` program hands
/// the bridge (its ODBC), here and to the Windows service.
pub type Opener = fn(&str) -> Result<Box<dyn Database>>;

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

/// Whether a node could run on the config's `bridge` section: its connection string
/// connects, and the database has the bridge installed. Says which dialect and
/// prefix.
pub fn check(cfg: &crate::config::Bridge, open: Opener) -> Result<String> {
    let over = Overrides::default();
    let mut db = open(&dsn_of(cfg, &over)?)?;
    let o = options(cfg, &over, db.as_mut())?;
    installed(db.as_mut(), &o.sql)?;
    Ok(format!("{}, prefix {}", o.sql.dialect.name(), o.sql.names.prefix()))
}

/// `MI_E_NOT_FOUND` unless the database has the bridge installed (its meta table
/// names the database).
pub fn installed(db: &mut dyn Database, sql: &Sql) -> Result<()> {
    let found = db.query(&sql.probe(), &[], 1);
    db.rollback();
    match found {
        Ok(rows) if !rows.is_empty() => Ok(()),
        Ok(_) | Err(_) => Err(Error::new(
            crate::error::Code::NotFound,
            format!(
                "the bridge is not installed in this database (no {}): run `mi-sdk bridge install` first",
                sql.names.meta()
            ),
        )),
    }
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
    if let Some(q) = sql.invalid_objects() {
        let bad = db.query(&q, &[], 10)?;
        db.rollback();
        if !bad.is_empty() {
            let names: Vec<String> = bad.into_iter().filter_map(|r| r.into_iter().next().flatten()).collect();
            return Err(Error::invalid(format!(
                "installed, but {} did not compile (Oracle 18c or later is needed: DBMS_SESSION.SLEEP); \
                 see USER_ERRORS",
                names.join(", ")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_shown() {
        assert_eq!(safe_dsn("Driver={X};Server=h;UID=a;PWD=s3cret;"), "Driver={X};Server=h;UID=a;PWD=***;");
        assert_eq!(safe_dsn("DSN=his;Password=p"), "DSN=his;Password=***");
        assert_eq!(safe_dsn("Server=h;PWD={a;b}}c};UID=u"), "Server=h;PWD=***;UID=u");
        assert_eq!(safe_dsn("Driver={PostgreSQL Unicode};Server=h"), "Driver={PostgreSQL Unicode};Server=h");
        assert_eq!(safe_dsn("no pairs"), "no pairs");
        assert_eq!(safe_dsn("DSN=his;;PWD=s3cret"), "DSN=his;;PWD=***");
        assert_eq!(safe_dsn(";Trusted_Connection; pwd =x;UID=u"), ";Trusted_Connection; pwd =***;UID=u");
        let cfg = crate::config::Bridge { dsn: "DSN=his;pwd = s3cret".into(), ..Default::default() };
        let shown = format!("{cfg:?}");
        assert!(shown.contains("DSN=his") && !shown.contains("s3cret"), "{shown}");
    }
}
