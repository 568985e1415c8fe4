//! The SQL of the bridge in each database's own dialect: the objects a DBA installs
//! (the request table, its meta table, the two procedures, the view) and the
//! statements bridge nodes run. Names come from one prefix, so two HIS schemas in
//! one database never clash. Every timestamp the bridge compares (the leases) is
//! the database server's own clock, never a node's.

use crate::error::{Error, Result};

/// The row states the HIS sees: `new` (written by the procedure), `sending`
/// (claimed by a node, which may have sent it), and the journal's final states.
pub const FINAL_STATES: [&str; 5] = ["succeeded", "business_error", "failed", "uncertain", "reversed"];

/// The longest error text kept in a row (the column holds 2000 characters in every
/// dialect; shorter leaves room for a GBK database's byte counts).
pub const ERR_MSG_CHARS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    MySql,
    SqlServer,
    Oracle,
}

impl Dialect {
    pub const ALL: [Dialect; 4] = [Dialect::Postgres, Dialect::MySql, Dialect::SqlServer, Dialect::Oracle];

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
            Dialect::SqlServer => "sqlserver",
            Dialect::Oracle => "oracle",
        }
    }

    pub fn parse(s: &str) -> Result<Dialect> {
        match s.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Ok(Dialect::Postgres),
            "mysql" | "mariadb" => Ok(Dialect::MySql),
            "sqlserver" | "mssql" => Ok(Dialect::SqlServer),
            "oracle" => Ok(Dialect::Oracle),
            _ => Err(Error::invalid(format!(
                "unknown --dialect \"{}\": one of postgres, mysql (also MariaDB), sqlserver, oracle",
                s.chars().take(40).collect::<String>()
            ))),
        }
    }

    /// The dialect of a database by the name its ODBC driver gives it
    /// (`SQL_DBMS_NAME`).
    pub fn of_dbms(dbms: &str) -> Option<Dialect> {
        let d = dbms.to_ascii_lowercase();
        if d.contains("postgres") {
            Some(Dialect::Postgres)
        } else if d.contains("mysql") || d.contains("mariadb") {
            Some(Dialect::MySql)
        } else if d.contains("sql server") {
            Some(Dialect::SqlServer)
        } else if d.contains("oracle") {
            Some(Dialect::Oracle)
        } else {
            None
        }
    }

    /// The server's clock for leases: compared only with itself.
    fn lease_now(self) -> &'static str {
        match self {
            Dialect::Postgres => "CURRENT_TIMESTAMP",
            Dialect::MySql => "UTC_TIMESTAMP(3)",
            Dialect::SqlServer => "SYSUTCDATETIME()",
            Dialect::Oracle => "SYSTIMESTAMP",
        }
    }

    /// The server's clock for the times people read (created, claimed, finished).
    fn now(self) -> &'static str {
        match self {
            Dialect::Postgres => "CURRENT_TIMESTAMP",
            Dialect::MySql => "CURRENT_TIMESTAMP(3)",
            Dialect::SqlServer => "SYSDATETIME()",
            Dialect::Oracle => "SYSTIMESTAMP",
        }
    }

    fn lease_after(self, secs: u32) -> String {
        match self {
            Dialect::Postgres => format!("CURRENT_TIMESTAMP + INTERVAL '{secs} seconds'"),
            Dialect::MySql => format!("UTC_TIMESTAMP(3) + INTERVAL {secs} SECOND"),
            Dialect::SqlServer => format!("DATEADD(SECOND, {secs}, SYSUTCDATETIME())"),
            Dialect::Oracle => format!("SYSTIMESTAMP + NUMTODSINTERVAL({secs}, 'SECOND')"),
        }
    }
}

/// The names of one installation, all from its prefix (default `mi`): table
/// `mi_request`, `mi_meta`, procedures `sp_mi_call` and `sp_mi_call_wait`, view
/// `v_mi_result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

/// Oracle before 12.2 allows 30 characters per name: `sp_` + 16 + `_call_wait` fits.
const PREFIX_MAX: usize = 16;

impl Names {
    pub fn new(prefix: &str) -> Result<Names> {
        let ok = !prefix.is_empty()
            && prefix.len() <= PREFIX_MAX
            && prefix.starts_with(|c: char| c.is_ascii_alphabetic())
            && prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(Error::invalid(format!(
                "--prefix \"{}\" is not a name prefix: 1 to {PREFIX_MAX} letters, digits or _, starting with a letter",
                prefix.chars().take(40).collect::<String>()
            )));
        }
        Ok(Names { prefix: prefix.to_ascii_lowercase() })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    pub fn table(&self) -> String {
        format!("{}_request", self.prefix)
    }
    pub fn meta(&self) -> String {
        format!("{}_meta", self.prefix)
    }
    pub fn call(&self) -> String {
        format!("sp_{}_call", self.prefix)
    }
    pub fn call_wait(&self) -> String {
        format!("sp_{}_call_wait", self.prefix)
    }
    pub fn view(&self) -> String {
        format!("v_{}_result", self.prefix)
    }
    fn index(&self) -> String {
        format!("{}_request_todo", self.prefix)
    }
}

/// One statement of a script. `block` marks a procedure body: a DBA's client needs
/// it delimited (`DELIMITER`, `GO`, `/`), the ODBC installer sends it whole.
#[derive(Debug, Clone)]
pub struct Stmt {
    pub sql: String,
    pub block: bool,
}

fn plain(sql: String) -> Stmt {
    Stmt { sql, block: false }
}

fn block(sql: String) -> Stmt {
    Stmt { sql, block: true }
}

fn final_list() -> String {
    FINAL_STATES.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ")
}

fn all_states() -> String {
    format!("'new', 'sending', {}", final_list())
}

/// The statements that install the bridge's objects.
pub fn install(d: Dialect, n: &Names) -> Vec<Stmt> {
    let (t, m) = (n.table(), n.meta());
    // Column types by dialect: (id, long text, short text, integer, timestamp).
    let (id, text, vc, int, ts) = match d {
        Dialect::Postgres => ("BIGINT GENERATED BY DEFAULT AS IDENTITY", "TEXT", "VARCHAR", "INTEGER", "TIMESTAMPTZ"),
        Dialect::MySql => ("BIGINT NOT NULL AUTO_INCREMENT", "LONGTEXT", "VARCHAR", "INT", "DATETIME(3)"),
        Dialect::SqlServer => ("BIGINT IDENTITY(1,1) NOT NULL", "NVARCHAR(MAX)", "NVARCHAR", "INT", "DATETIME2(3)"),
        Dialect::Oracle => (
            "NUMBER(19) GENERATED BY DEFAULT AS IDENTITY",
            "CLOB",
            "NVARCHAR2",
            "NUMBER(10)",
            "TIMESTAMP(3) WITH TIME ZONE",
        ),
    };
    let big = if d == Dialect::Oracle { "NUMBER(19)" } else { "BIGINT" };
    let ascii = if d == Dialect::Oracle { "VARCHAR2" } else { "VARCHAR" };
    let now = d.now();
    // Oracle puts DEFAULT before NOT NULL; the others take either order.
    let table = format!(
        "CREATE TABLE {t} (
  id {id},
  infno {ascii}(10) NOT NULL,
  input_json {text} NOT NULL,
  priority {int} DEFAULT 0 NOT NULL,
  state {ascii}(16) DEFAULT 'new' NOT NULL,
  created_at {ts} DEFAULT {now} NOT NULL,
  claimed_at {ts} NULL,
  finished_at {ts} NULL,
  node {vc}(100) NULL,
  journal_id {ascii}(64) NULL,
  lease_until {ts} NULL,
  mi_code {int} NULL,
  output_json {text} NULL,
  err_msg {vc}(2000) NULL,
  journal_request_id {big} NULL,
  msgid {ascii}(40) NULL,
  CONSTRAINT {t}_pk PRIMARY KEY (id),
  CONSTRAINT {t}_state CHECK (state IN ({states}))
){engine}",
        states = all_states(),
        engine = if d == Dialect::MySql { " ENGINE=InnoDB" } else { "" },
    );
    let mut s = vec![
        plain(table),
        plain(format!("CREATE INDEX {} ON {t} (state, priority DESC, id)", n.index())),
        // For the DBA's clean-up of old rows (`DELETE ... WHERE finished_at < ...`),
        // which would otherwise scan, and lock, the whole table.
        plain(format!("CREATE INDEX {}_request_done ON {t} (finished_at)", n.prefix())),
        plain(format!(
            "CREATE TABLE {m} (meta_key {ascii}(40) NOT NULL PRIMARY KEY, meta_value {ascii}(200) NOT NULL){}",
            if d == Dialect::MySql { " ENGINE=InnoDB" } else { "" }
        )),
    ];
    // The database's own name for the journals (`bridge:<id>:...`), made by the
    // database so that a DBA's script and the installer do the same.
    let random_id = match d {
        Dialect::Postgres => "md5(random()::text || clock_timestamp()::text)",
        Dialect::MySql => "REPLACE(UUID(), '-', '')",
        Dialect::SqlServer => "LOWER(REPLACE(CONVERT(VARCHAR(36), NEWID()), '-', ''))",
        Dialect::Oracle => "LOWER(RAWTOHEX(SYS_GUID()))",
    };
    s.push(plain(format!("INSERT INTO {m} (meta_key, meta_value) VALUES ('database_id', {random_id})")));
    s.push(plain(format!("INSERT INTO {m} (meta_key, meta_value) VALUES ('schema_version', '1')")));
    if d == Dialect::Oracle {
        s.push(plain("COMMIT".into()));
    }
    s.push(plain(format!(
        "CREATE VIEW {} AS SELECT id AS request_id, infno, priority, state, mi_code, output_json, err_msg, msgid, \
         journal_request_id, node, created_at, claimed_at, finished_at FROM {t}",
        n.view()
    )));
    s.extend(procedures(d, n));
    s
}

fn procedures(d: Dialect, n: &Names) -> Vec<Stmt> {
    let (t, call, wait) = (n.table(), n.call(), n.call_wait());
    let fin = final_list();
    match d {
        Dialect::Postgres => vec![
            block(format!(
                "CREATE PROCEDURE {call}(p_infno VARCHAR, p_input TEXT, p_priority INTEGER, INOUT p_request_id BIGINT DEFAULT NULL)
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {t} (infno, input_json, priority) VALUES (p_infno, p_input, COALESCE(p_priority, 0))
    RETURNING id INTO p_request_id;
END
$$"
            )),
            // COMMIT inside a procedure needs a CALL outside a transaction block
            // (autocommit): PostgreSQL says so itself otherwise.
            block(format!(
                "CREATE PROCEDURE {wait}(p_infno VARCHAR, p_input TEXT, p_priority INTEGER, p_timeout_s INTEGER,
  INOUT p_request_id BIGINT DEFAULT NULL, INOUT p_state VARCHAR DEFAULT NULL, INOUT p_mi_code INTEGER DEFAULT NULL,
  INOUT p_output TEXT DEFAULT NULL, INOUT p_err_msg VARCHAR DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
  v_deadline TIMESTAMPTZ := clock_timestamp() + make_interval(secs => COALESCE(p_timeout_s, 30));
BEGIN
  INSERT INTO {t} (infno, input_json, priority) VALUES (p_infno, p_input, COALESCE(p_priority, 0))
    RETURNING id INTO p_request_id;
  COMMIT;
  LOOP
    SELECT state, mi_code, output_json, err_msg INTO p_state, p_mi_code, p_output, p_err_msg
      FROM {t} WHERE id = p_request_id;
    -- A new snapshot each round, whatever the session's isolation level.
    COMMIT;
    EXIT WHEN p_state IN ({fin}) OR clock_timestamp() >= v_deadline;
    PERFORM pg_sleep(0.02);
  END LOOP;
END
$$"
            )),
        ],
        Dialect::MySql => vec![
            block(format!(
                "CREATE PROCEDURE {call}(IN p_infno VARCHAR(10), IN p_input LONGTEXT, IN p_priority INT, OUT p_request_id BIGINT)
BEGIN
  INSERT INTO {t} (infno, input_json, priority) VALUES (p_infno, p_input, COALESCE(p_priority, 0));
  SET p_request_id = LAST_INSERT_ID();
END"
            )),
            // The COMMITs: the bridge sees the row only once committed, and under
            // REPEATABLE READ a caller without autocommit would read one snapshot forever.
            block(format!(
                "CREATE PROCEDURE {wait}(IN p_infno VARCHAR(10), IN p_input LONGTEXT, IN p_priority INT, IN p_timeout_s INT,
  OUT p_request_id BIGINT, OUT p_state VARCHAR(16), OUT p_mi_code INT, OUT p_output LONGTEXT, OUT p_err_msg VARCHAR(2000))
BEGIN
  DECLARE v_deadline DATETIME(3) DEFAULT SYSDATE(3) + INTERVAL COALESCE(p_timeout_s, 30) SECOND;
  INSERT INTO {t} (infno, input_json, priority) VALUES (p_infno, p_input, COALESCE(p_priority, 0));
  SET p_request_id = LAST_INSERT_ID();
  COMMIT;
  w: LOOP
    SELECT state, mi_code, output_json, err_msg INTO p_state, p_mi_code, p_output, p_err_msg
      FROM {t} WHERE id = p_request_id;
    COMMIT;
    IF p_state IN ({fin}) OR SYSDATE(3) >= v_deadline THEN LEAVE w; END IF;
    DO SLEEP(0.02);
  END LOOP;
END"
            )),
        ],
        Dialect::SqlServer => vec![
            block(format!(
                "CREATE PROCEDURE {call} @p_infno VARCHAR(10), @p_input NVARCHAR(MAX), @p_priority INT = 0, @p_request_id BIGINT OUTPUT
AS
BEGIN
  SET NOCOUNT ON;
  INSERT INTO {t} (infno, input_json, priority) VALUES (@p_infno, @p_input, ISNULL(@p_priority, 0));
  SET @p_request_id = SCOPE_IDENTITY();
END"
            )),
            block(format!(
                "CREATE PROCEDURE {wait} @p_infno VARCHAR(10), @p_input NVARCHAR(MAX), @p_priority INT = 0, @p_timeout_s INT = 30,
  @p_request_id BIGINT OUTPUT, @p_state VARCHAR(16) OUTPUT, @p_mi_code INT OUTPUT,
  @p_output NVARCHAR(MAX) OUTPUT, @p_err_msg NVARCHAR(2000) OUTPUT
AS
BEGIN
  SET NOCOUNT ON;
  -- A caller in manual-commit mode (IMPLICIT_TRANSACTIONS ON) would open a
  -- transaction with the INSERT that the bridge cannot see; reverts on return.
  SET IMPLICIT_TRANSACTIONS OFF;
  IF @@TRANCOUNT > 0
  BEGIN
    RAISERROR('{wait} must be called outside a transaction: the bridge sees a request only once it is committed', 16, 1);
    RETURN;
  END;
  DECLARE @deadline DATETIME2(3) = DATEADD(SECOND, ISNULL(@p_timeout_s, 30), SYSDATETIME());
  INSERT INTO {t} (infno, input_json, priority) VALUES (@p_infno, @p_input, ISNULL(@p_priority, 0));
  SET @p_request_id = SCOPE_IDENTITY();
  WHILE 1 = 1
  BEGIN
    SELECT @p_state = state, @p_mi_code = mi_code, @p_output = output_json, @p_err_msg = err_msg
      FROM {t} WHERE id = @p_request_id;
    IF @p_state IN ({fin}) OR SYSDATETIME() >= @deadline BREAK;
    WAITFOR DELAY '00:00:00.020';
  END;
END"
            )),
        ],
        Dialect::Oracle => vec![
            block(format!(
                "CREATE OR REPLACE PROCEDURE {call}(p_infno IN VARCHAR2, p_input IN CLOB, p_priority IN NUMBER, p_request_id OUT NUMBER)
AS
BEGIN
  INSERT INTO {t} (infno, input_json, priority) VALUES (p_infno, p_input, NVL(p_priority, 0))
    RETURNING id INTO p_request_id;
END;"
            )),
            // The request is committed on its own (an autonomous transaction): the
            // caller's open transaction is neither committed nor waited on.
            block(format!(
                "CREATE OR REPLACE PROCEDURE {wait}(p_infno IN VARCHAR2, p_input IN CLOB, p_priority IN NUMBER, p_timeout_s IN NUMBER,
  p_request_id OUT NUMBER, p_state OUT VARCHAR2, p_mi_code OUT NUMBER, p_output OUT CLOB, p_err_msg OUT NVARCHAR2)
AS
  v_deadline TIMESTAMP WITH TIME ZONE := SYSTIMESTAMP + NUMTODSINTERVAL(NVL(p_timeout_s, 30), 'SECOND');
  PROCEDURE enqueue IS
    PRAGMA AUTONOMOUS_TRANSACTION;
  BEGIN
    INSERT INTO {t} (infno, input_json, priority) VALUES (p_infno, p_input, NVL(p_priority, 0))
      RETURNING id INTO p_request_id;
    COMMIT;
  END;
BEGIN
  enqueue;
  LOOP
    SELECT state, mi_code, output_json, err_msg INTO p_state, p_mi_code, p_output, p_err_msg
      FROM {t} WHERE id = p_request_id;
    EXIT WHEN p_state IN ({fin}) OR SYSTIMESTAMP >= v_deadline;
    DBMS_SESSION.SLEEP(0.02);
  END LOOP;
END;"
            )),
        ],
    }
}

/// The statements that remove what [`install`] made (the requests with them).
pub fn uninstall(d: Dialect, n: &Names) -> Vec<Stmt> {
    // Oracle has no IF EXISTS (before 23c): the installer skips what is missing.
    let ie = if d == Dialect::Oracle { "" } else { "IF EXISTS " };
    vec![
        plain(format!("DROP PROCEDURE {ie}{}", n.call_wait())),
        plain(format!("DROP PROCEDURE {ie}{}", n.call())),
        plain(format!("DROP VIEW {ie}{}", n.view())),
        plain(format!("DROP TABLE {ie}{}", n.meta())),
        plain(format!("DROP TABLE {ie}{}", n.table())),
    ]
}

/// A script as a DBA's client runs it: psql, mysql, sqlcmd / SSMS, SQL*Plus.
pub fn render(d: Dialect, n: &Names, stmts: &[Stmt], what: &str) -> String {
    let client = match d {
        Dialect::Postgres => "psql -v ON_ERROR_STOP=1 -f FILE",
        Dialect::MySql => "mysql DATABASE < FILE",
        Dialect::SqlServer => "sqlcmd -b -i FILE, or SQL Server Management Studio",
        Dialect::Oracle => "SQL*Plus: @FILE",
    };
    let mut out = format!(
        "-- mi_sdk database bridge: {what} ({}, prefix {}).\n-- Made by `mi-sdk bridge script`; run it with {client}.\n-- docs/bridge.md says what each object is for.\n\n",
        d.name(),
        n.prefix()
    );
    for s in stmts {
        match (d, s.block) {
            (Dialect::MySql, true) => out.push_str(&format!("DELIMITER //\n{} //\nDELIMITER ;\n\n", s.sql)),
            (Dialect::SqlServer, _) => out.push_str(&format!("{}\nGO\n\n", s.sql)),
            (Dialect::Oracle, true) => out.push_str(&format!("{}\n/\n\n", s.sql)),
            _ => out.push_str(&format!("{};\n\n", s.sql)),
        }
    }
    out
}

/// The statements a node runs, for one installation.
#[derive(Debug, Clone)]
pub struct Sql {
    pub dialect: Dialect,
    pub names: Names,
    /// How long a node's claim holds without renewal.
    pub lease_s: u32,
}

impl Sql {
    /// Whether the installation is there: a query that fails when it is not.
    pub fn probe(&self) -> String {
        format!("SELECT meta_value FROM {} WHERE meta_key = 'database_id'", self.names.meta())
    }

    /// The oldest, most urgent new rows, locked against other nodes and skipped by
    /// them (`id, infno, input_json`). Oracle refuses a row limit beside FOR UPDATE:
    /// the caller fetches `limit` rows and no more.
    pub fn claim(&self, limit: u32) -> String {
        let t = self.names.table();
        match self.dialect {
            Dialect::Postgres | Dialect::MySql => format!(
                "SELECT id, infno, input_json FROM {t} WHERE state = 'new' ORDER BY priority DESC, id LIMIT {limit} \
                 FOR UPDATE SKIP LOCKED"
            ),
            Dialect::SqlServer => format!(
                "SELECT TOP ({limit}) id, infno, input_json FROM {t} WITH (UPDLOCK, READPAST, ROWLOCK) \
                 WHERE state = 'new' ORDER BY priority DESC, id"
            ),
            Dialect::Oracle => format!(
                "SELECT id, infno, input_json FROM {t} WHERE state = 'new' ORDER BY priority DESC, id FOR UPDATE SKIP LOCKED"
            ),
        }
    }

    /// Claims the rows just selected (ids are the database's own numbers): from here
    /// they may be sent. Parameters: node, journal id.
    pub fn take(&self, ids: &[i64]) -> String {
        let ids = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        format!(
            "UPDATE {} SET state = 'sending', node = ?, journal_id = ?, claimed_at = {}, lease_until = {} \
             WHERE id IN ({ids}) AND state = 'new'",
            self.names.table(),
            self.dialect.now(),
            self.dialect.lease_after(self.lease_s)
        )
    }

    /// Puts a claimed row back, never sent (the SDK was busy or stopping).
    /// Parameters: id, node.
    pub fn release(&self) -> String {
        format!(
            "UPDATE {} SET state = 'new', node = NULL, journal_id = NULL, claimed_at = NULL, lease_until = NULL \
             WHERE id = ? AND node = ? AND state = 'sending'",
            self.names.table()
        )
    }

    /// The outcome, in one statement, by the node that holds the row, or over an
    /// `uncertain` left by another node's take-over when the journal that sent it
    /// knows better. Parameters: state, mi_code, output, err_msg, journal request
    /// id, msgid, id, node, journal id.
    pub fn finish(&self) -> String {
        format!(
            "UPDATE {} SET state = ?, mi_code = ?, output_json = ?, err_msg = ?, journal_request_id = ?, msgid = ?, \
             finished_at = {}, lease_until = NULL \
             WHERE id = ? AND ((node = ? AND state = 'sending') OR (state = 'uncertain' AND journal_id = ?))",
            self.names.table(),
            self.dialect.now()
        )
    }

    /// Renews the claims on the rows this node's workers hold. Parameter: node.
    pub fn renew(&self, ids: &[i64]) -> String {
        let ids = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        format!(
            "UPDATE {} SET lease_until = {} WHERE node = ? AND state = 'sending' AND id IN ({ids})",
            self.names.table(),
            self.dialect.lease_after(self.lease_s)
        )
    }

    /// Rows whose node stopped renewing (`id, infno, input_json, node, journal_id`).
    pub fn expired(&self) -> String {
        format!(
            "SELECT id, infno, input_json, node, journal_id FROM {} WHERE state = 'sending' AND lease_until < {} ORDER BY id",
            self.names.table(),
            self.dialect.lease_now()
        )
    }

    /// Takes over an expired row for this node. Parameters: node, journal id, id,
    /// the node it was taken from.
    pub fn adopt(&self) -> String {
        format!(
            "UPDATE {} SET node = ?, journal_id = ?, claimed_at = {}, lease_until = {} \
             WHERE id = ? AND node = ? AND state = 'sending' AND lease_until < {}",
            self.names.table(),
            self.dialect.now(),
            self.dialect.lease_after(self.lease_s),
            self.dialect.lease_now()
        )
    }

    /// An expired row that may have been sent from another journal and must not be
    /// sent again: `uncertain`, still naming the node and journal that know.
    /// Parameters: mi_code, err_msg, id, node.
    pub fn abandon(&self) -> String {
        format!(
            "UPDATE {} SET state = 'uncertain', mi_code = ?, err_msg = ?, finished_at = {}, lease_until = NULL \
             WHERE id = ? AND node = ? AND state = 'sending' AND lease_until < {}",
            self.names.table(),
            self.dialect.now(),
            self.dialect.lease_now()
        )
    }

    /// Uncertain rows this node's journal sent (`id`), from an id on. Parameters:
    /// journal id, the last id seen.
    pub fn uncertain(&self) -> String {
        format!(
            "SELECT id FROM {} WHERE state = 'uncertain' AND journal_id = ? AND id > ? ORDER BY id",
            self.names.table()
        )
    }

    /// Oracle reports a procedure that does not compile as a success (with a
    /// warning): the installer asks for the invalid objects afterwards.
    pub fn invalid_objects(&self) -> Option<String> {
        let n = &self.names;
        (self.dialect == Dialect::Oracle).then(|| {
            format!(
                "SELECT object_name FROM user_objects WHERE status = 'INVALID' AND object_name IN ('{}', '{}', '{}')",
                n.call().to_uppercase(),
                n.call_wait().to_uppercase(),
                n.view().to_uppercase()
            )
        })
    }

    /// How many rows are not final yet.
    pub fn unfinished(&self) -> String {
        format!("SELECT COUNT(*) FROM {} WHERE state IN ('new', 'sending')", self.names.table())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_one_prefix_and_bad_prefixes_are_refused() {
        let n = Names::new("His2").unwrap();
        assert_eq!(
            (n.table(), n.meta(), n.call(), n.call_wait(), n.view()),
            (
                "his2_request".into(),
                "his2_meta".into(),
                "sp_his2_call".into(),
                "sp_his2_call_wait".into(),
                "v_his2_result".into()
            )
        );
        for bad in ["", "1mi", "mi-x", "mi;DROP", "a_very_long_prefix_x", "张"] {
            assert!(Names::new(bad).is_err(), "{bad}");
        }
        assert!(Names::new("abcdefghijklmnop").unwrap().call_wait().len() <= 30);
    }

    #[test]
    fn dialects_by_name_and_by_their_drivers() {
        assert_eq!(Dialect::parse("MariaDB").unwrap(), Dialect::MySql);
        assert!(Dialect::parse("db2").unwrap_err().message.contains("postgres"));
        assert_eq!(Dialect::of_dbms("PostgreSQL"), Some(Dialect::Postgres));
        assert_eq!(Dialect::of_dbms("Microsoft SQL Server"), Some(Dialect::SqlServer));
        assert_eq!(Dialect::of_dbms("MariaDB"), Some(Dialect::MySql));
        assert_eq!(Dialect::of_dbms("Oracle"), Some(Dialect::Oracle));
        assert_eq!(Dialect::of_dbms("SQLite"), None);
    }

    #[test]
    fn scripts_delimit_procedures_as_each_client_needs() {
        let n = Names::new("mi").unwrap();
        let my = render(Dialect::MySql, &n, &install(Dialect::MySql, &n), "install");
        assert!(my.contains("DELIMITER //\nCREATE PROCEDURE sp_mi_call("));
        let ms = render(Dialect::SqlServer, &n, &install(Dialect::SqlServer, &n), "install");
        assert_eq!(ms.matches("\nGO\n").count(), install(Dialect::SqlServer, &n).len());
        let ora = render(Dialect::Oracle, &n, &install(Dialect::Oracle, &n), "install");
        assert!(ora.contains("END;\n/\n"));
        // Statements sent through ODBC carry no terminator but a PL/SQL block's own.
        for d in Dialect::ALL {
            for s in install(d, &n).iter().chain(&uninstall(d, &n)) {
                assert!(!s.sql.trim_end().ends_with(';') || (d == Dialect::Oracle && s.block), "{:?}: {}", d, s.sql);
            }
        }
    }

    #[test]
    fn leases_use_the_servers_clock_and_claims_skip_locked_rows() {
        for d in Dialect::ALL {
            let sql = Sql { dialect: d, names: Names::new("mi").unwrap(), lease_s: 30 };
            assert!(sql.adopt().contains(d.lease_now()), "{d:?}");
            assert!(sql.take(&[1, 2]).contains("WHERE id IN (1, 2) AND state = 'new'"));
            let claim = sql.claim(1);
            assert!(claim.contains("SKIP LOCKED") || claim.contains("READPAST"), "{claim}");
        }
    }
}
