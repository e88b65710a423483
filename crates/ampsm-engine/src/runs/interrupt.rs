//! Ctrl-C and SIGTERM for commands that run an agent or a script in the foreground (`iterate`, `new`
//! with a setup command or `--run`, `chat`, `demo`). Without this the signal would end the program and
//! leave the agent, which runs in a process group of its own, working on unattended. With it, the first
//! signal stops what is running: the agent's whole group through the run's cancel channel (SIGINT, then
//! SIGTERM, then SIGKILL, a few seconds at most), or a test or setup script that polls
//! [`Interrupt::interrupted`] while it holds a [`Busy`] guard; the run then finishes its bookkeeping (the
//! work so far is committed, the iteration recorded `cancelled`). Later signals only say that this is under
//! way: the stop is bounded, and quitting in the middle of it could leave the agent behind. When nothing is
//! running, what happens is the front end's choice, given to [`Interrupt::install`] (the CLI ends the program
//! with its exit code for an interruption, as the signal would without this).
//!
//! Not for batch and bench runners (they abort through the store, see `batch::abort_on_signal_for`) nor
//! for the dashboard (it stops what it started itself).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// A handle on the process's SIGINT/SIGTERM listener; clones share it.
#[derive(Debug, Clone)]
pub struct Interrupt {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    signals: AtomicUsize,
    interrupted: AtomicBool,
    /// How many [`Busy`] guards are alive.
    busy: AtomicUsize,
    /// The cancel channel of the agent run in progress, if any.
    target: Mutex<Option<watch::Sender<bool>>>,
}

impl Interrupt {
    /// Starts listening for SIGINT and SIGTERM (for the rest of the process's life: from now on they no
    /// longer end it by themselves). `when_idle` runs on a signal that finds nothing to stop.
    pub fn install(when_idle: fn()) -> Interrupt {
        let inner = Arc::new(Inner::default());
        let listener = inner.clone();
        std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                else {
                    return;
                };
                loop {
                    tokio::select! {
                        r = tokio::signal::ctrl_c() => if r.is_err() { return },
                        _ = term.recv() => {},
                    }
                    if listener.signalled() == Signalled::Idle {
                        when_idle();
                    }
                }
            });
        });
        Interrupt { inner }
    }

    /// Whether a signal arrived.
    pub fn interrupted(&self) -> bool {
        self.inner.interrupted.load(Ordering::SeqCst)
    }

    /// Makes `cancel` the channel to stop on a signal (at once if one already arrived).
    pub(crate) fn watch(&self, cancel: watch::Sender<bool>) {
        if self.interrupted() {
            let _ = cancel.send(true);
        }
        if let Ok(mut t) = self.inner.target.lock() {
            *t = Some(cancel);
        }
    }

    /// The run ended: nothing to stop any more.
    pub(crate) fn unwatch(&self) {
        if let Ok(mut t) = self.inner.target.lock() {
            *t = None;
        }
    }

    /// Marks the process busy with something that polls [`Interrupt::interrupted`] and stops by itself
    /// (a script, a wait for input) until the guard is dropped: a signal then sets the flag instead of
    /// ending the program.
    pub fn busy(&self) -> Busy {
        self.inner.busy.fetch_add(1, Ordering::SeqCst);
        Busy { inner: self.inner.clone() }
    }
}

/// See [`Interrupt::busy`].
#[derive(Debug)]
pub struct Busy {
    inner: Arc<Inner>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.inner.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a signal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signalled {
    /// A run or a script was told to stop (or already is stopping).
    Stopping,
    /// Nothing was running: the front end decides.
    Idle,
}

impl Inner {
    fn signalled(&self) -> Signalled {
        let n = self.signals.fetch_add(1, Ordering::SeqCst) + 1;
        self.interrupted.store(true, Ordering::SeqCst);
        let agent = self.target.lock().ok().and_then(|t| t.clone());
        let busy = self.busy.load(Ordering::SeqCst) > 0;
        match (n, agent) {
            (1, Some(cancel)) => {
                eprintln!("\ninterrupted: stopping the agent; its work so far will be committed…");
                let _ = cancel.send(true);
            }
            (1, None) if busy => eprintln!("\ninterrupted: stopping…"),
            (1, None) => return Signalled::Idle,
            _ => eprintln!("still stopping (at most a few seconds); the work is being saved"),
        }
        Signalled::Stopping
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handle with no listener: signals come from `inner.signalled()`.
    fn unlistened() -> Interrupt {
        Interrupt { inner: Arc::new(Inner::default()) }
    }

    #[test]
    fn a_signal_cancels_the_watched_run_and_one_before_it_cancels_at_once() {
        let i = unlistened();
        let (tx, rx) = watch::channel(false);
        i.watch(tx);
        assert!(!i.interrupted() && !*rx.borrow());
        assert_eq!(i.inner.signalled(), Signalled::Stopping);
        assert!(i.interrupted() && *rx.borrow());
        i.unwatch();
        let (tx, rx) = watch::channel(false);
        i.watch(tx);
        assert!(*rx.borrow(), "already interrupted: the next run is stopped as it starts");
    }

    #[test]
    fn a_signal_that_finds_nothing_running_is_left_to_the_front_end() {
        let i = unlistened();
        assert_eq!(i.inner.signalled(), Signalled::Idle);
        assert!(i.interrupted());
    }
}
