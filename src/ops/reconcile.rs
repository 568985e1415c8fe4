//! `mi-sdk reconcile`: the day's books with the platform (docs/operations.md, "Day
//! end"), on an SDK of its own, as the HIS's screens do through `mi_reconcile`.

use super::Printed;
use crate::config::Config;
use crate::error::Result;
use crate::reconcile::{run, Spec};
use crate::sdk::Sdk;
use std::time::Duration;

/// Reconciles `from`..`to` with the config's journal and `journals`; the report
/// as a table or JSON, and a failure when the books differ.
pub fn reconcile(
    cfg: Config,
    from: &str,
    to: Option<&str>,
    journals: Vec<std::path::PathBuf>,
    as_json: bool,
) -> Result<Printed> {
    let spec = Spec { from: from.into(), to: to.map(String::from), journals };
    super::journal(&cfg)?;
    let sdk = Sdk::start(cfg)?;
    let report = run(&sdk, &spec);
    sdk.shutdown(Duration::from_secs(10));
    let report = report?;
    let text = if as_json { report.to_json() } else { report.to_text() };
    let failure =
        (!report.balanced).then(|| format!("the books of {} to {} differ from the platform's", report.from, report.to));
    Ok(Printed { text, failure })
}
