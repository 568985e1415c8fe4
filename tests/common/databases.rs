//! Database servers of a test's own, started from Debian's packages on loopback in
//! a temp folder and stopped when dropped: PostgreSQL and MariaDB, with the clients
//! a HIS developer would use (psql, mariadb) and their ODBC drivers registered.

use super::require;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn driver_registered(name: &str) -> bool {
    std::fs::read_to_string("/etc/odbcinst.ini").is_ok_and(|t| t.contains(&format!("[{name}]")))
}

/// A database server of the test's own, in a temp folder, stopped when dropped.
pub trait Server {
    fn dsn(&self) -> String;
    /// Runs SQL through the database's own client; its output rows, `|`-separated.
    fn sql(&self, sql: &str) -> String;
    /// Runs a script file through the client, as a DBA would.
    fn run_file(&self, file: &Path) -> (bool, String);
    fn dialect(&self) -> &'static str;
}

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl Postgres {
    pub fn start() -> Option<Postgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| Some(e.ok()?.path().join("bin")))
            .filter(|b| b.join("initdb").is_file())
            .max()?;
        if !driver_registered("PostgreSQL Unicode") || Command::new("psql").arg("--version").output().is_err() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let pg = Postgres { dir, bin, port: free_port() };
        if is_root() {
            // PostgreSQL refuses to run as root: its folder belongs to `postgres`.
            assert!(Command::new("chown").arg("postgres").arg(pg.dir.path()).status().unwrap().success());
        }
        let data = pg.dir.path().join("data");
        let ok = pg
            .as_owner(pg.bin.join("initdb"))
            .args(["-D", data.to_str().unwrap(), "-U", "his", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "initdb failed");
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", pg.port, pg.dir.path().display());
        let ok = pg
            .as_owner(pg.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap(), "-o", &opts, "-l"])
            .arg(pg.dir.path().join("log"))
            .args(["-w", "start"])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(
            ok,
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(pg.dir.path().join("log")).unwrap_or_default()
        );
        pg.sql("CREATE DATABASE his");
        Some(pg)
    }

    fn as_owner(&self, exe: PathBuf) -> Command {
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    /// Stops the server (`fast`: sessions are cut) or starts it again.
    pub fn pg_ctl(&self, action: &str) {
        let data = self.dir.path().join("data");
        let opts =
            format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().display());
        let ok = self
            .as_owner(self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap(), "-o", &opts, "-m", "fast", "-l"])
            .arg(self.dir.path().join("log"))
            .args(["-w", action])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "pg_ctl {action}");
    }

    fn psql(&self, db: &str) -> Command {
        let mut c = Command::new("psql");
        c.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "his",
            "-d",
            db,
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
        ]);
        c
    }
}

impl Server for Postgres {
    fn dsn(&self) -> String {
        format!("Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port={};Database=his;Uid=his;", self.port)
    }

    fn sql(&self, sql: &str) -> String {
        let db = if sql.starts_with("CREATE DATABASE") { "postgres" } else { "his" };
        let out = self.psql(db).args(["-c", sql]).output().unwrap();
        assert!(out.status.success(), "psql: {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn run_file(&self, file: &Path) -> (bool, String) {
        let out = self.psql("his").arg("-f").arg(file).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    fn dialect(&self) -> &'static str {
        "postgres"
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = self
            .as_owner(self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .status();
    }
}

pub struct MariaDb {
    dir: tempfile::TempDir,
    port: u16,
    server: Child,
}

impl MariaDb {
    pub fn start() -> Option<MariaDb> {
        let present = |c: &str| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success());
        if !present("mariadbd") && !Path::new("/usr/sbin/mariadbd").is_file()
            || !present("mariadb")
            || !driver_registered("MariaDB Unicode")
        {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let user = if is_root() { "root".to_string() } else { std::env::var("USER").unwrap_or_default() };
        let ok = Command::new("mariadb-install-db")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--user={user}"))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "mariadb-install-db failed");
        let port = free_port();
        let server = Command::new("/usr/sbin/mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--port={port}"))
            .arg(format!("--user={user}"))
            .args(["--bind-address=127.0.0.1", "--innodb-flush-log-at-trx-commit=2", "--skip-log-bin"])
            .arg(format!("--log-error={}", dir.path().join("log").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let m = MariaDb { dir, port, server };
        let started = Instant::now();
        while !m.client(None).args(["-e", "SELECT 1"]).output().unwrap().status.success() {
            assert!(started.elapsed() < Duration::from_secs(30), "MariaDB did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        // A HIS database in GBK, as many are: the bridge's columns take its charset.
        m.sql("CREATE DATABASE his CHARACTER SET gbk");
        Some(m)
    }

    fn client(&self, db: Option<&str>) -> Command {
        let mut c = Command::new("mariadb");
        c.arg("--no-defaults").arg(format!("--socket={}", self.dir.path().join("sock").display())).args([
            "-uroot",
            "--default-character-set=utf8mb4",
            "-N",
            "-B",
            "--raw",
        ]);
        if let Some(db) = db {
            c.arg(db);
        }
        c
    }
}

impl Server for MariaDb {
    fn dsn(&self) -> String {
        format!("Driver={{MariaDB Unicode}};Server=127.0.0.1;Port={};Database=his;Uid=root;", self.port)
    }

    fn sql(&self, sql: &str) -> String {
        let db = if sql.starts_with("CREATE DATABASE") { None } else { Some("his") };
        let out = self.client(db).args(["-e", sql]).output().unwrap();
        assert!(out.status.success(), "mariadb: {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().replace('\t', "|")
    }

    fn run_file(&self, file: &Path) -> (bool, String) {
        let out = self.client(Some("his")).stdin(std::fs::File::open(file).unwrap()).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    fn dialect(&self) -> &'static str {
        "mysql"
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

pub fn postgres() -> Option<Postgres> {
    let pg = Postgres::start();
    require(pg.is_some(), "PostgreSQL server, psql or the odbc-postgresql driver not found").then_some(pg?)
}

pub fn mariadb() -> Option<MariaDb> {
    let m = MariaDb::start();
    require(m.is_some(), "MariaDB server, its client or the odbc-mariadb driver not found").then_some(m?)
}
