//! WAL checkpoints on a thread of their own. SQLite's automatic checkpoint runs
//! inside whichever commit crosses the threshold: that caller copies up to a
//! thousand pages into the database file and waits for two fsyncs. Here a second
//! connection checkpoints (PASSIVE: it never blocks a writer) a few times a second,
//! so the commits of calls only append to the WAL.

use crate::error::{Error, Result};
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the WAL is checkpointed.
const EVERY: Duration = Duration::from_millis(100);
/// The writer's own automatic checkpoint, kept as a backstop: ~40 MB of WAL.
pub const BACKSTOP_PAGES: u32 = 10_000;

pub struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    pub fn start(path: &Path) -> Result<Checkpointer> {
        let conn = Connection::open(path)
            .map_err(|e| Error::journal(format!("cannot open journal {} to checkpoint: {e}", path.display())))?;
        conn.busy_timeout(Duration::from_millis(100))?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("mi-checkpoint".into())
            .spawn(move || {
                while !s.load(Ordering::Acquire) {
                    std::thread::sleep(EVERY);
                    // Busy (another process checkpointing) or failed: the next round
                    // or the backstop does it; nothing is lost either way.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .map_err(|e| Error::journal(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer { stop, thread })
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.thread.join();
    }
}
