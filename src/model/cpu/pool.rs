//! Where a forward pass runs natively: on a thread of rayon's pool, so that the kernels' parallel
//! loops start there.
//!
//! A parallel loop started from a thread outside the pool is handed to the pool, and its caller
//! sleeps until it is done: two thread switches per loop, and a frame has hundreds of loops (one
//! or more per layer). Started on one of the pool's threads, the loop runs there and the other
//! threads steal from it, with no hand-over. So [`on_pool`] moves a whole forward pass onto the
//! pool once (one hand-over per frame).
//!
//! The matrix products decide from this too whether they may fork: a product made in the forward
//! pass itself may use every thread, one made inside a task of a kernel's parallel loop (or of the
//! caller's own, e.g. one image of a batch) may not, as the other threads are busy already.

#[cfg(not(target_family = "wasm"))]
use std::cell::Cell;
#[cfg(not(target_family = "wasm"))]
use std::sync::Arc;
#[cfg(not(target_family = "wasm"))]
use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(not(target_family = "wasm"))]
use std::time::{Duration, Instant};

#[cfg(not(target_family = "wasm"))]
thread_local! {
    /// Set while this thread runs a forward pass for [`on_pool`], outside the tasks of its loops.
    static FORWARD: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a forward pass on the CPU) on a thread of rayon's pool, and returns its result: the
/// calling thread waits. Already on the pool (a task of the caller's own parallel loop), or in
/// wasm (one thread), it runs `f` where it is.
pub(in crate::model) fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    #[cfg(not(target_family = "wasm"))]
    if rayon::current_thread_index().is_none() {
        let done = Arc::new(AtomicBool::new(false));
        return rayon::scope(|_| {
            let (home, flag) = (rayon::current_thread_index(), Arc::clone(&done));
            // Detached from the scope, so that the pass never waits for a thread that is busy
            // elsewhere to reach its copy; a copy that starts after the pass finds `done` set.
            rayon::spawn_broadcast(move |thread| {
                if Some(thread.index()) != home {
                    keep_busy(&flag);
                }
            });
            FORWARD.set(true);
            // Cleared even if `f` panics (the panic is passed on to the caller by `scope`), and
            // the other threads released.
            let _clear = Reset(false);
            let _release = Release(&done);
            f()
        });
    }
    f()
}

/// How long [`keep_busy`] goes on looking without finding a task before it gives the thread back
/// to rayon (which lets it sleep).
#[cfg(not(target_family = "wasm"))]
const IDLE_LIMIT: Duration = Duration::from_micros(500);

/// How long [`keep_busy`] runs at most, tasks or not (longer than a default model's frame here).
#[cfg(not(target_family = "wasm"))]
const BUSY_LIMIT: Duration = Duration::from_millis(50);

/// Keeps one of the pool's other threads looking for the forward pass's tasks until `done`, so
/// that a parallel loop's tasks start at once: an idle rayon thread goes to sleep after a few
/// dozen rounds without work, and waking it again takes a system call and, in a virtual machine,
/// often a trip through the host. Between tasks it yields to the OS as rayon's idle rounds do.
///
/// It stops after [`IDLE_LIMIT`] without a task, and after [`BUSY_LIMIT`] in all. Rayon may run
/// this job on a thread that is itself waiting inside a `join` it stole from the pass (the job
/// comes from the thread's own queue): until this returns, that `join` cannot finish and the pass
/// waits for it. With nothing else in the pool no task comes, and the idle limit ends the wait
/// within 500 µs; with other work in the pool (another caller's pass, the caller's own rayon
/// tasks), the total limit does. Either way a stall, never a deadlock.
#[cfg(not(target_family = "wasm"))]
fn keep_busy(done: &AtomicBool) {
    let start = Instant::now();
    let mut idle_since = None;
    while !done.load(Ordering::Acquire) {
        let worked = rayon::yield_now() == Some(rayon::Yield::Executed);
        let now = Instant::now();
        if now.duration_since(start) > BUSY_LIMIT {
            return;
        }
        if worked {
            idle_since = None;
            continue;
        }
        match idle_since {
            None => idle_since = Some(now),
            Some(since) if now.duration_since(since) > IDLE_LIMIT => return,
            Some(_) => std::thread::yield_now(),
        }
    }
}

/// Sets its flag when dropped: the forward pass is over, the other threads may rest.
#[cfg(not(target_family = "wasm"))]
struct Release<'a>(&'a AtomicBool);

#[cfg(not(target_family = "wasm"))]
impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Runs `f`, one task of a kernel's parallel loop: the matrix products it makes run on this
/// thread alone (the others have their own tasks).
#[cfg(not(target_family = "wasm"))]
#[inline(always)]
pub(super) fn in_task<R>(f: impl FnOnce() -> R) -> R {
    let _restore = Reset(FORWARD.replace(false));
    f()
}

/// Whether a matrix product made now may fork onto rayon's threads: off the pool (the caller's
/// own thread), or in a forward pass that [`on_pool`] runs, outside its loops' tasks.
#[cfg(not(target_family = "wasm"))]
pub(super) fn products_may_fork() -> bool {
    rayon::current_thread_index().is_none() || FORWARD.get()
}

/// Sets [`FORWARD`] to its value when dropped.
#[cfg(not(target_family = "wasm"))]
struct Reset(bool);

#[cfg(not(target_family = "wasm"))]
impl Drop for Reset {
    fn drop(&mut self) {
        FORWARD.set(self.0);
    }
}

#[cfg(all(test, not(target_family = "wasm")))]
mod tests {
    use super::*;

    #[test]
    fn forward_passes_move_onto_the_pool_and_loop_tasks_do_not_fork() {
        assert!(rayon::current_thread_index().is_none() && products_may_fork());
        let (moved, forks, in_task_forks) =
            on_pool(|| (rayon::current_thread_index().is_some(), products_may_fork(), in_task(products_may_fork)));
        assert!(moved && forks && !in_task_forks);
        // Back on the caller's thread, and nothing left set on the pool's.
        assert!(products_may_fork());
        assert!(rayon::broadcast(|_| !FORWARD.get()).into_iter().all(|clear| clear));
        // Already on the pool (a task of the caller's own loop): no fork, run in place.
        let nested = rayon::scope(|_| on_pool(products_may_fork));
        assert!(!nested);
        // A panic in the pass reaches the caller, and clears the flag.
        let caught = std::panic::catch_unwind(|| on_pool(|| panic!("in the pass")));
        assert!(caught.is_err());
        assert!(rayon::broadcast(|_| !FORWARD.get()).into_iter().all(|clear| clear));

        // Many short passes whose loops split into nested joins (as `zeros` and the kernels'
        // loops do). A thread kept busy for a pass may pick up that job inside a stolen half of
        // one of them: that must cost a stall at most, never a hang (without the limits this
        // hung within 50,000 passes about one run in two). In the same test as the checks above,
        // whose broadcasts would see these passes' flags. A watchdog turns a hang into a failure.
        use rayon::prelude::*;
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for _ in 0..50_000 {
                let sum = on_pool(|| {
                    let mut v = Vec::with_capacity(1 << 12);
                    v.par_extend(rayon::iter::repeat_n(1u32, 1 << 12));
                    v.par_chunks(64).map(|c| c.iter().sum::<u32>()).sum::<u32>()
                });
                assert_eq!(sum, 1 << 12);
            }
            sender.send(()).unwrap();
        });
        let finished = receiver.recv_timeout(Duration::from_secs(120));
        assert!(finished.is_ok(), "the passes hung or failed");
    }
}
