//! Background WAL checkpoints for a connection that writes a lot: the writer's automatic checkpoints are
//! turned off and a thread with its own connection checkpoints every so often, so the fsync that a
//! checkpoint needs never stalls the writer. Durability is unchanged (synchronous=NORMAL in WAL mode).

use crate::{Store, StoreError};
use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running background checkpointer; [`Checkpointer::stop`] ends it with one last checkpoint. The writer
/// connection keeps automatic checkpoints off until it is closed.
pub struct Checkpointer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing `store`'s database every `every`, and turns off `store`'s own automatic
    /// checkpoints until [`Checkpointer::stop`].
    pub fn start(store: &Store, every: Duration) -> Result<Checkpointer, StoreError> {
        store.conn().pragma_update(None, "wal_autocheckpoint", 0)?;
        let conn = Connection::open(store.path()).map_err(|e| StoreError::open(store.path(), e))?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(|e| StoreError::open(store.path(), e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let tick = Duration::from_millis(25);
            let mut waited = Duration::ZERO;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                waited += tick;
                if waited >= every {
                    waited = Duration::ZERO;
                    // PASSIVE never blocks the writer; an error only means this round was skipped.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            }
            let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        });
        Ok(Checkpointer { stop, handle: Some(handle) })
    }

    /// Stops the thread after a last checkpoint.
    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.finish();
    }
}
