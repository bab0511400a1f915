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
        return rayon::scope(|_| {
            FORWARD.set(true);
            // Cleared even if `f` panics (the panic is passed on to the caller by `scope`).
            let _clear = Reset(false);
            f()
        });
    }
    f()
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
    }
}
