//! `mi-sdk service`: the drop-box service (`mi-sdk serve --watch DIR`), or a
//! database bridge node (`mi-sdk bridge run`, on the config's `bridge` section),
//! registered with Windows' Service Control Manager, so that it runs from boot without a
//! logged-on cashier, survives the console window being closed, and stops when
//! Windows asks (at shutdown too) within the time Windows gives it.
//!
//! `install` checks the config and the folder first, then registers the program
//! with an absolute `--config` and `--watch` (services start in the system folder)
//! and `service run`, the entry point only the Service Control Manager calls. The
//! service logs to the config's log folder like the SDK; a start that fails ends
//! with a service-specific exit code ([`ExitCode`]) and leaves its error in
//! `<name>.service-error.txt` beside the program, which `service start` shows.
//! Elsewhere than Windows the commands say to run `mi-sdk serve` under the
//! system's own service manager instead (docs/operations.md).

use crate::config::Config;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The service's name when none is given: one drop-box service per PC is usual.
pub const DEFAULT_NAME: &str = "mi-sdk";

/// What the service runs: its name, the config file, and what it serves.
#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    pub config: PathBuf,
    pub serves: Serves,
}

/// The drop-box folder, or the database bridge (through the `mi-sdk` program's
/// ODBC, handed over as an opener: the library links no driver manager).
#[derive(Clone, Debug)]
pub enum Serves {
    Folder(PathBuf),
    Bridge(crate::bridge::Opener),
    /// The local HTTP API on this address (docs/http.md).
    Http(String),
}

/// Why the service stopped by itself, as the service-specific exit code Windows
/// records for it (`sc query` shows it; `mi-sdk service start` explains it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// The config could not be read or is invalid.
    Config = 1,
    /// The watched folder is missing, or another service watches it.
    Folder = 2,
    /// The SDK could not start (the journal, most often).
    Start = 3,
    /// The service failed while running.
    Failed = 4,
    /// A bridge's database could not be reached, or has no bridge installed.
    Database = 5,
}

impl ExitCode {
    pub fn from_code(code: u32) -> Option<ExitCode> {
        [ExitCode::Config, ExitCode::Folder, ExitCode::Start, ExitCode::Failed, ExitCode::Database]
            .into_iter()
            .find(|c| *c as u32 == code)
    }

    pub fn meaning(self) -> &'static str {
        match self {
            ExitCode::Config => "its config could not be read or is invalid",
            ExitCode::Folder => "its watched folder is missing, or another service watches it",
            ExitCode::Start => "the SDK could not start (see the log folder: the journal, most often)",
            ExitCode::Failed => "it failed while running (see the log folder)",
            ExitCode::Database => {
                "its database could not be reached, or the bridge is not installed there (mi-sdk bridge install)"
            }
        }
    }
}

impl Spec {
    /// The spec `install` registers: absolute paths, and the config and folder (or
    /// database) checked now, so a mistake is told to the person installing rather
    /// than found at the next boot.
    pub fn checked(name: &str, config: &Path, serves: Serves) -> Result<Spec> {
        check_name(name)?;
        let absolute = |p: &Path, what: &str| {
            std::path::absolute(p).map_err(|e| Error::config(format!("{what} {}: {e}", p.display())))
        };
        let config = absolute(config, "config")?;
        let cfg = Config::from_file(&config)?;
        let serves = match serves {
            Serves::Folder(watch) => {
                let watch = absolute(&watch, "watch folder")?;
                // Opening takes the folder's lock, released at once: a folder that
                // another service already watches is refused here.
                drop(super::dropbox::Folder::open(&watch)?);
                Serves::Folder(watch)
            }
            Serves::Bridge(open) => {
                crate::bridge::check(&cfg.bridge, open)?;
                Serves::Bridge(open)
            }
            Serves::Http(addr) => {
                super::http::check(&cfg, &addr)?;
                Serves::Http(addr)
            }
        };
        Ok(Spec { name: name.to_string(), config, serves })
    }

    /// What the service serves, in words.
    pub fn what(&self) -> String {
        match &self.serves {
            Serves::Folder(watch) => format!("drop-box: request files in {}", watch.display()),
            Serves::Bridge(_) => "database bridge: the config's bridge section".to_string(),
            Serves::Http(addr) => format!("HTTP API on http://{addr}"),
        }
    }

    /// The arguments the Service Control Manager starts the program with.
    pub fn launch_arguments(&self) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec![
            "--config".into(),
            self.config.clone().into_os_string(),
            "service".into(),
            "run".into(),
            "--name".into(),
            self.name.clone().into(),
        ];
        match &self.serves {
            Serves::Folder(watch) => args.extend(["--watch".into(), watch.clone().into_os_string()]),
            Serves::Bridge(_) => args.push("--bridge".into()),
            Serves::Http(addr) => args.extend(["--http".into(), addr.into()]),
        }
        args
    }
}

/// A service name Windows accepts (it allows up to 256 characters, no slashes),
/// short, and needing no quoting in a command line.
pub fn check_name(name: &str) -> Result<()> {
    let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > 80 || !name.chars().all(fine) {
        return Err(Error::invalid(format!(
            "service name {name:?}: use letters, digits, '-', '_' or '.' (at most 80)"
        )));
    }
    Ok(())
}

#[cfg(windows)]
pub use self::windows::{install, main, start, stop, uninstall};

#[cfg(not(windows))]
mod elsewhere {
    use super::Spec;
    use crate::error::{Error, Result};

    /// Said by every `mi-sdk service` command off Windows (and by `service run`).
    pub fn unsupported() -> Error {
        Error::invalid(
            "mi-sdk service is for Windows; elsewhere run `mi-sdk serve --watch DIR` under the \
             system's service manager (a systemd unit is in docs/operations.md)",
        )
    }

    pub fn install(_: &Spec) -> Result<String> {
        Err(unsupported())
    }
    pub fn uninstall(_: &str) -> Result<String> {
        Err(unsupported())
    }
    pub fn start(_: &str) -> Result<String> {
        Err(unsupported())
    }
    pub fn stop(_: &str) -> Result<String> {
        Err(unsupported())
    }
}
#[cfg(not(windows))]
pub use self::elsewhere::{install, start, stop, uninstall, unsupported};

#[cfg(windows)]
mod windows {
    use super::{ExitCode, Serves, Spec};
    use crate::config::Config;
    use crate::error::{Code, Error, Result};
    use crate::ops::dropbox;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, OnceLock};
    use std::time::{Duration, Instant};
    use windows_service::service::{
        ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode, ServiceInfo,
        ServiceStartType, ServiceState, ServiceStatus, ServiceType,
    };
    use windows_service::service_control_handler::{self, ServiceControlHandlerResult, ServiceStatusHandle};
    use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

    /// How long `start` and `stop` wait for the service to get there.
    const WAIT: Duration = Duration::from_secs(30);

    /// How long Windows waits for the service at shutdown (its preshutdown timeout):
    /// the SDK's [`dropbox::SHUTDOWN`], and a send on Windows may outlast that
    /// (docs/api_reference.md, mi_shutdown).
    const PRESHUTDOWN: Duration = Duration::from_secs(30);

    /// Where the service leaves the reason it stopped as it started, for
    /// `service start` to show: beside the program, `<name>.service-error.txt`.
    fn error_file(name: &str) -> Option<std::path::PathBuf> {
        let exe = std::env::current_exe().ok()?;
        Some(exe.parent()?.join(format!("{name}.service-error.txt")))
    }

    fn scm_error(what: &str, e: windows_service::Error) -> Error {
        let os = match &e {
            windows_service::Error::Winapi(io) => io.raw_os_error(),
            _ => None,
        };
        let hint = match os {
            Some(5) => ": access denied (run it from an administrator's command prompt)",
            Some(1060) => ": no such service (is it installed? `mi-sdk service install`)",
            Some(1073) => ": a service of that name is installed already (`mi-sdk service uninstall` first)",
            Some(1056) => ": it is running already",
            Some(1061) => ": it is starting or stopping; try again in a moment",
            _ => "",
        };
        let detail = match e {
            windows_service::Error::Winapi(io) => io.to_string(),
            other => other.to_string(),
        };
        Error::new(Code::Config, format!("{what}: {detail}{hint}"))
    }

    fn manager(access: ServiceManagerAccess) -> Result<ServiceManager> {
        ServiceManager::local_computer(None::<&str>, access)
            .map_err(|e| scm_error("cannot reach the Service Control Manager", e))
    }

    pub fn install(spec: &Spec) -> Result<String> {
        let m = manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
        let exe = std::env::current_exe().map_err(|e| Error::config(format!("where is this program? {e}")))?;
        let info = ServiceInfo {
            name: spec.name.clone().into(),
            display_name: match spec.serves {
                Serves::Folder(_) => format!("mi_sdk drop-box ({})", spec.name),
                Serves::Bridge(_) => format!("mi_sdk database bridge ({})", spec.name),
                Serves::Http(_) => format!("mi_sdk HTTP API ({})", spec.name),
            }
            .into(),
            service_type: ServiceType::OWN_PROCESS,
            start_type: ServiceStartType::AutoStart,
            error_control: ServiceErrorControl::Normal,
            executable_path: exe,
            launch_arguments: spec.launch_arguments(),
            dependencies: vec![],
            account_name: None,
            account_password: None,
        };
        let s = m
            .create_service(&info, ServiceAccess::CHANGE_CONFIG)
            .map_err(|e| scm_error(&format!("cannot install the service {}", spec.name), e))?;
        // Time to stop at Windows shutdown, asked before the shutdown begins (the
        // few seconds a plain shutdown notice leaves are too short for the SDK's own
        // SHUTDOWN). Both settings are courtesies: a service without them still runs.
        let _ = s.set_preshutdown_timeout(PRESHUTDOWN);
        let _ = s.set_description(format!(
            "Medical-insurance {} for the HIS; config {}",
            spec.what(),
            spec.config.display()
        ));
        Ok(format!(
            "installed the service {} (starts with Windows): {} with the config {}\n\
             start it now with: mi-sdk service start{}\n",
            spec.name,
            spec.what(),
            spec.config.display(),
            name_arg(&spec.name)
        ))
    }

    fn name_arg(name: &str) -> String {
        if name == super::DEFAULT_NAME {
            String::new()
        } else {
            format!(" --name {name}")
        }
    }

    pub fn uninstall(name: &str) -> Result<String> {
        let s = open(name, ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE)?;
        let mut out = String::new();
        if stop_it(&s, name)? {
            out.push_str(&format!("stopped the service {name}\n"));
        }
        s.delete().map_err(|e| scm_error(&format!("cannot remove the service {name}"), e))?;
        out.push_str(&format!("removed the service {name}\n"));
        Ok(out)
    }

    pub fn start(name: &str) -> Result<String> {
        let s = open(name, ServiceAccess::QUERY_STATUS | ServiceAccess::START)?;
        // One starting (at boot) or stopping is let finish first.
        let st = wait_until(&s, |st| matches!(st, ServiceState::Running | ServiceState::Stopped))?;
        if st.current_state == ServiceState::Running {
            return Ok(format!("the service {name} is running already\n"));
        }
        let error_file = error_file(name);
        if let Some(f) = &error_file {
            let _ = std::fs::remove_file(f);
        }
        s.start::<&str>(&[]).map_err(|e| scm_error(&format!("cannot start the service {name}"), e))?;
        let st = wait_until(&s, |st| matches!(st, ServiceState::Running | ServiceState::Stopped))?;
        if st.current_state == ServiceState::Running {
            return Ok(format!("the service {name} is running\n"));
        }
        let why = match st.exit_code {
            ServiceExitCode::ServiceSpecific(c) => {
                ExitCode::from_code(c).map_or_else(|| format!("exit code {c}"), |c| c.meaning().to_string())
            }
            ServiceExitCode::Win32(c) => format!("Windows error {c}"),
        };
        let said = error_file.and_then(|f| std::fs::read_to_string(f).ok()).unwrap_or_default();
        let said = if said.trim().is_empty() { String::new() } else { format!(": {}", said.trim()) };
        Err(Error::config(format!("the service {name} stopped as it started: {why}{said}")))
    }

    pub fn stop(name: &str) -> Result<String> {
        let s = open(name, ServiceAccess::QUERY_STATUS | ServiceAccess::STOP)?;
        if stop_it(&s, name)? {
            Ok(format!("the service {name} stopped\n"))
        } else {
            Ok(format!("the service {name} is stopped already\n"))
        }
    }

    /// Stops the service and waits until it has; false when it was stopped already.
    /// One starting is let start first (Windows refuses to stop it before), one
    /// stopping is waited for.
    fn stop_it(s: &windows_service::service::Service, name: &str) -> Result<bool> {
        let st = wait_until(s, |st| {
            matches!(st, ServiceState::Running | ServiceState::Stopped | ServiceState::StopPending)
        })?;
        if st.current_state == ServiceState::Stopped {
            return Ok(false);
        }
        if st.current_state == ServiceState::Running {
            s.stop().map_err(|e| scm_error(&format!("cannot stop the service {name}"), e))?;
        }
        wait_for(s, ServiceState::Stopped)?;
        Ok(true)
    }

    /// The installed service `name`, for what `access` allows.
    fn open(name: &str, access: ServiceAccess) -> Result<windows_service::service::Service> {
        manager(ServiceManagerAccess::CONNECT)?
            .open_service(name, access)
            .map_err(|e| scm_error(&format!("cannot open the service {name}"), e))
    }

    fn wait_for(s: &windows_service::service::Service, want: ServiceState) -> Result<ServiceStatus> {
        wait_until(s, |st| st == want)
    }

    fn wait_until(s: &windows_service::service::Service, done: impl Fn(ServiceState) -> bool) -> Result<ServiceStatus> {
        let began = Instant::now();
        loop {
            let st = s.query_status().map_err(|e| scm_error("cannot ask the service's state", e))?;
            if done(st.current_state) {
                return Ok(st);
            }
            if began.elapsed() > WAIT {
                return Err(Error::new(
                    Code::Timeout,
                    format!("the service is still {:?} after {} s", st.current_state, WAIT.as_secs()),
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The service's body, on the thread the Service Control Manager gives it:
    /// reports each state, stops on Stop or at Windows shutdown (preshutdown), and
    /// ends with an exit code.
    pub fn main(spec: Spec) {
        let stop = Arc::new(AtomicBool::new(false));
        let handle: Arc<OnceLock<ServiceStatusHandle>> = Arc::new(OnceLock::new());
        let (flag, h) = (stop.clone(), handle.clone());
        let handler = move |control| match control {
            ServiceControl::Stop | ServiceControl::Preshutdown | ServiceControl::Shutdown => {
                // Said before the flag is set: the service's own Stopped, which
                // may follow at once, must come last.
                if let Some(h) = h.get() {
                    report(h, ServiceState::StopPending, None, 1);
                }
                flag.store(true, Ordering::Release);
                ServiceControlHandlerResult::NoError
            }
            ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
            _ => ServiceControlHandlerResult::NotImplemented,
        };
        let h = match service_control_handler::register(&spec.name, handler) {
            Ok(h) => *handle.get_or_init(|| h),
            Err(e) => {
                record_error(&spec.name, &format!("cannot register with the Service Control Manager: {e}"));
                return;
            }
        };
        report(&h, ServiceState::StartPending, None, 0);
        let done = AtomicBool::new(false);
        let code = std::thread::scope(|scope| {
            // While stopping, a checkpoint every second tells Windows the service
            // is still at it (the SDK finishing a send can outlast the wait hint).
            scope.spawn(|| {
                let mut checkpoint = 1;
                while !done.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_secs(1));
                    if stop.load(Ordering::Acquire) && !done.load(Ordering::Acquire) {
                        checkpoint += 1;
                        report(&h, ServiceState::StopPending, None, checkpoint);
                    }
                }
            });
            let r = serve(&spec, &stop, || {
                if let Some(f) = error_file(&spec.name) {
                    let _ = std::fs::remove_file(f);
                }
                report(&h, ServiceState::Running, None, 0);
            });
            done.store(true, Ordering::Release);
            r.err().map(|(code, why)| {
                record_error(&spec.name, &why);
                code
            })
        });
        report(&h, ServiceState::Stopped, code, 0);
    }

    /// Leaves why the service could not start where `service start` reads it.
    fn record_error(name: &str, why: &str) {
        if let Some(f) = error_file(name) {
            let _ = std::fs::write(f, why);
        }
    }

    /// The drop-box service (or the bridge node) on the spec's config; on failure,
    /// the exit code that says what failed and the error itself (also logged once
    /// the config has named the log folder).
    fn serve(spec: &Spec, stop: &AtomicBool, running: impl FnOnce()) -> std::result::Result<(), (ExitCode, String)> {
        let cfg = Config::from_file(&spec.config).map_err(|e| (ExitCode::Config, e.message))?;
        // The SDK starts its logging too; started here, a folder refused is logged.
        let _ = crate::logging::init(&cfg);
        let refused = |code: ExitCode, e: Error| {
            log::error!("service {}: {}", spec.name, e.message);
            (code, e.message)
        };
        let started = AtomicBool::new(false);
        let on_start = || {
            started.store(true, Ordering::Release);
            log::info!("service {} started by Windows", spec.name);
            running();
        };
        let r = match &spec.serves {
            Serves::Folder(watch) => {
                let folder = dropbox::Folder::open(watch).map_err(|e| refused(ExitCode::Folder, e))?;
                dropbox::serve_until(cfg, folder, stop, on_start)
            }
            Serves::Http(addr) => match crate::ops::http::serve_until(cfg, addr, stop, |_| on_start()) {
                Err(e) if !started.load(Ordering::Acquire) => {
                    let code = if e.code == Code::Config { ExitCode::Config } else { ExitCode::Start };
                    return Err(refused(code, e));
                }
                other => other,
            },
            Serves::Bridge(open) => {
                // A database not up yet at boot is waited for; one without the
                // bridge, or a bridge section that cannot work, ends the service.
                let over = crate::bridge::Overrides::default();
                match crate::bridge::serve_until(cfg, *open, &over, stop, true, |_| on_start()) {
                    Err(e) if !started.load(Ordering::Acquire) => {
                        let code = match e.code {
                            Code::NotFound | Code::Network => ExitCode::Database,
                            Code::Config | Code::InvalidArgument => ExitCode::Config,
                            _ => ExitCode::Start,
                        };
                        return Err(refused(code, e));
                    }
                    other => other.map(|_| ()),
                }
            }
        };
        match r {
            Ok(()) => {
                log::info!("service {} stopped by Windows", spec.name);
                Ok(())
            }
            Err(e) => {
                log::error!("service {}: {e}", spec.name);
                let code = if started.load(Ordering::Acquire) { ExitCode::Failed } else { ExitCode::Start };
                Err((code, e.message))
            }
        }
    }

    fn report(h: &ServiceStatusHandle, state: ServiceState, code: Option<ExitCode>, checkpoint: u32) {
        let accepts = if state == ServiceState::Running {
            ServiceControlAccept::STOP | ServiceControlAccept::PRESHUTDOWN
        } else {
            ServiceControlAccept::empty()
        };
        let wait_hint = match state {
            ServiceState::StartPending => Duration::from_secs(30),
            // Until the next checkpoint (every second while stopping).
            ServiceState::StopPending => Duration::from_secs(5),
            _ => Duration::ZERO,
        };
        let _ = h.set_service_status(ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: accepts,
            exit_code: code.map_or(ServiceExitCode::Win32(0), |c| ServiceExitCode::ServiceSpecific(c as u32)),
            checkpoint,
            wait_hint,
            process_id: None,
        });
    }
}
