//! `mi-sdk service`: the drop-box service (`mi-sdk serve --watch DIR`) registered
//! with Windows' Service Control Manager, so that it runs from boot without a
//! logged-on cashier, survives the console window being closed, and stops when
//! Windows asks (at shutdown too) within the time Windows gives it.
//!
//! `install` checks the config and the folder first, then registers the program
//! with an absolute `--config` and `--watch` (services start in the system folder)
//! and `service run`, the entry point only the Service Control Manager calls. The
//! service logs to the config's log folder like the SDK; a start that fails ends
//! with a service-specific exit code ([`ExitCode`]) that `service start` explains.
//! Elsewhere than Windows the commands say to run `mi-sdk serve` under the
//! system's own service manager instead (docs/operations.md).

use crate::config::Config;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The service's name when none is given: one drop-box service per PC is usual.
pub const DEFAULT_NAME: &str = "mi-sdk";

/// What the service runs: its name, the config file and the watched folder.
#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    pub config: PathBuf,
    pub watch: PathBuf,
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
}

impl ExitCode {
    pub fn from_code(code: u32) -> Option<ExitCode> {
        [ExitCode::Config, ExitCode::Folder, ExitCode::Start, ExitCode::Failed].into_iter().find(|c| *c as u32 == code)
    }

    pub fn meaning(self) -> &'static str {
        match self {
            ExitCode::Config => "its config could not be read or is invalid",
            ExitCode::Folder => "its watched folder is missing, or another service watches it",
            ExitCode::Start => "the SDK could not start (see the log folder: the journal, most often)",
            ExitCode::Failed => "it failed while running (see the log folder)",
        }
    }
}

impl Spec {
    /// The spec `install` registers: absolute paths, and the config and folder
    /// checked now, so a mistake is told to the person installing rather than
    /// found at the next boot.
    pub fn checked(name: &str, config: &Path, watch: &Path) -> Result<Spec> {
        check_name(name)?;
        let absolute = |p: &Path, what: &str| {
            std::path::absolute(p).map_err(|e| Error::config(format!("{what} {}: {e}", p.display())))
        };
        let config = absolute(config, "config")?;
        Config::from_file(&config)?;
        let watch = absolute(watch, "watch folder")?;
        // Opening takes the folder's lock, released at once: a folder that another
        // service already watches is refused here.
        drop(super::dropbox::Folder::open(&watch)?);
        Ok(Spec { name: name.to_string(), config, watch })
    }

    /// The arguments the Service Control Manager starts the program with.
    pub fn launch_arguments(&self) -> Vec<std::ffi::OsString> {
        vec![
            "--config".into(),
            self.config.clone().into_os_string(),
            "service".into(),
            "run".into(),
            "--name".into(),
            self.name.clone().into(),
            "--watch".into(),
            self.watch.clone().into_os_string(),
        ]
    }
}

/// A service name Windows accepts (at most 256 characters, no slashes) and that
/// needs no quoting in a command line.
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

    fn unsupported() -> Error {
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
    /// Never called: `service run` is refused before it could be.
    pub fn main(_: Spec) {}
}
#[cfg(not(windows))]
pub use self::elsewhere::{install, main, start, stop, uninstall};

#[cfg(windows)]
mod windows {
    use super::{ExitCode, Spec};
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

    fn scm_error(what: &str, e: windows_service::Error) -> Error {
        let os = match &e {
            windows_service::Error::Winapi(io) => io.raw_os_error(),
            _ => None,
        };
        let hint = match os {
            Some(5) => ": access denied (run it from an administrator's command prompt)",
            Some(1060) => ": no such service (is it installed? `mi-sdk service install`)",
            Some(1073) => ": a service of that name is installed already (`mi-sdk service uninstall` first)",
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
            display_name: format!("mi_sdk drop-box ({})", spec.name).into(),
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
        // The description is a courtesy; a service without one still runs.
        let _ = s.set_description(format!(
            "Medical-insurance drop-box for the HIS: request files in {}; config {}",
            spec.watch.display(),
            spec.config.display()
        ));
        Ok(format!(
            "installed the service {} (starts with Windows): watching {} with the config {}\n\
             start it now with: mi-sdk service start{}\n",
            spec.name,
            spec.watch.display(),
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
        if state(&s)? != ServiceState::Stopped {
            s.stop().map_err(|e| scm_error(&format!("cannot stop the service {name}"), e))?;
            wait_for(&s, ServiceState::Stopped)?;
            out.push_str(&format!("stopped the service {name}\n"));
        }
        s.delete().map_err(|e| scm_error(&format!("cannot remove the service {name}"), e))?;
        out.push_str(&format!("removed the service {name}\n"));
        Ok(out)
    }

    pub fn start(name: &str) -> Result<String> {
        let s = open(name, ServiceAccess::QUERY_STATUS | ServiceAccess::START)?;
        if state(&s)? == ServiceState::Running {
            return Ok(format!("the service {name} is running already\n"));
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
        Err(Error::config(format!("the service {name} stopped as it started: {why}")))
    }

    pub fn stop(name: &str) -> Result<String> {
        let s = open(name, ServiceAccess::QUERY_STATUS | ServiceAccess::STOP)?;
        if state(&s)? == ServiceState::Stopped {
            return Ok(format!("the service {name} is stopped already\n"));
        }
        s.stop().map_err(|e| scm_error(&format!("cannot stop the service {name}"), e))?;
        wait_for(&s, ServiceState::Stopped)?;
        Ok(format!("the service {name} stopped\n"))
    }

    /// The installed service `name`, for what `access` allows.
    fn open(name: &str, access: ServiceAccess) -> Result<windows_service::service::Service> {
        manager(ServiceManagerAccess::CONNECT)?
            .open_service(name, access)
            .map_err(|e| scm_error(&format!("cannot open the service {name}"), e))
    }

    fn state(s: &windows_service::service::Service) -> Result<ServiceState> {
        Ok(s.query_status().map_err(|e| scm_error("cannot ask the service's state", e))?.current_state)
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
    /// reports each state, stops on Stop or Shutdown, and ends with an exit code.
    pub fn main(spec: Spec) {
        let stop = Arc::new(AtomicBool::new(false));
        let handle: Arc<OnceLock<ServiceStatusHandle>> = Arc::new(OnceLock::new());
        let (flag, h) = (stop.clone(), handle.clone());
        let handler = move |control| match control {
            ServiceControl::Stop | ServiceControl::Shutdown | ServiceControl::Preshutdown => {
                flag.store(true, Ordering::Release);
                if let Some(h) = h.get() {
                    report(h, ServiceState::StopPending, None);
                }
                ServiceControlHandlerResult::NoError
            }
            ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
            _ => ServiceControlHandlerResult::NotImplemented,
        };
        let Ok(h) = service_control_handler::register(&spec.name, handler) else { return };
        let h = *handle.get_or_init(|| h);
        report(&h, ServiceState::StartPending, None);
        let code = serve(&spec, &stop, || report(&h, ServiceState::Running, None)).err();
        report(&h, ServiceState::Stopped, code);
    }

    /// The drop-box service on the spec's config and folder, with the exit code
    /// that says which of them failed.
    fn serve(spec: &Spec, stop: &AtomicBool, running: impl FnOnce()) -> std::result::Result<(), ExitCode> {
        let cfg = Config::from_file(&spec.config).map_err(|_| ExitCode::Config)?;
        let folder = dropbox::Folder::open(&spec.watch).map_err(|_| ExitCode::Folder)?;
        let started = AtomicBool::new(false);
        let r = dropbox::serve_until(cfg, folder, stop, || {
            started.store(true, Ordering::Release);
            log::info!("service {} started by Windows", spec.name);
            running();
        });
        match r {
            Ok(()) => {
                log::info!("service {} stopped by Windows", spec.name);
                Ok(())
            }
            Err(e) => {
                log::error!("service {}: {e}", spec.name);
                Err(if started.load(Ordering::Acquire) { ExitCode::Failed } else { ExitCode::Start })
            }
        }
    }

    fn report(h: &ServiceStatusHandle, state: ServiceState, code: Option<ExitCode>) {
        let accepts = if state == ServiceState::Running {
            ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
        } else {
            ServiceControlAccept::empty()
        };
        let wait_hint = match state {
            ServiceState::StartPending => Duration::from_secs(30),
            // What the SDK may take to finish what it is sending, and a margin.
            ServiceState::StopPending => dropbox::SHUTDOWN + Duration::from_secs(5),
            _ => Duration::ZERO,
        };
        let _ = h.set_service_status(ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: accepts,
            exit_code: code.map_or(ServiceExitCode::Win32(0), |c| ServiceExitCode::ServiceSpecific(c as u32)),
            checkpoint: 0,
            wait_hint,
            process_id: None,
        });
    }
}
