//! Makes mistralrs's engine thread a member of a rayon pool of its own.
//!
//! candle splits each CPU op (every quantized matmul, norm and softmax) over rayon. mistralrs
//! runs its engine loop on a plain thread, which is not a rayon worker, so each of the few
//! hundred ops per decoded token is injected into the global pool while the engine thread
//! sleeps on a condition variable until a worker has finished it: a wake-up and a sleep per op,
//! and three busy threads on a two-core machine. The profile in BENCHMARKS.md put that
//! hand-off at about half of all CPU time while decoding.
//!
//! rayon can take over an existing thread as worker 0 of a new pool
//! (`ThreadPoolBuilder::use_current_thread`). Once the engine thread has done that, candle's
//! parallel loops run in that pool with the engine thread itself doing a share of the work
//! and the other workers stealing the rest, so there are as many busy threads as cores and
//! nobody sleeps between ops. mistralrs gives rollama no hook at the engine thread's start;
//! the first one it calls there is the sampler (a `CustomLogitsProcessor`, which mistralrs
//! runs on the engine thread when one sequence is decoding), so the sampler adopts the thread.
//! The first prompt therefore runs the old way; every step after it runs in the pool.

use std::cell::RefCell;
use std::sync::OnceLock;

/// Environment variable that turns the adoption off (`0`), for comparison.
pub const ENGINE_POOL: &str = "ROLLAMA_ENGINE_POOL";

thread_local! {
    /// The adopted pool, kept for the thread's lifetime: dropping it (when the engine thread
    /// ends, on unload) stops its other workers.
    static POOL: RefCell<Option<rayon::ThreadPool>> = const { RefCell::new(None) };
}

/// Makes the calling thread worker 0 of a new pool as large as the global one, unless it is
/// a rayon worker already (of any pool: mistralrs samples batches on the global pool's
/// workers), the global pool has a single thread (the pool would then be the calling thread
/// alone, and a job mistralrs spawns onto it while the thread waits would never run), or
/// `ROLLAMA_ENGINE_POOL=0`. Returns whether this call adopted the thread.
pub fn adopt_current_thread() -> bool {
    if rayon::current_thread_index().is_some() {
        return false;
    }
    let threads = rayon::current_num_threads();
    if threads < 2 || !enabled() {
        return false;
    }
    POOL.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.is_some() {
            return false;
        }
        let built = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .use_current_thread()
            .thread_name(|index| format!("rollama-engine-{index}"))
            .build();
        match built {
            Ok(pool) => {
                *slot = Some(pool);
                true
            }
            Err(_) => false,
        }
    })
}

/// Read once: this runs on every sampled token, and a thread that may not adopt asks again.
fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| crate::env::bool_var(ENGINE_POOL, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    #[test]
    fn an_adopted_thread_runs_parallel_loops_in_its_own_pool() {
        std::thread::spawn(|| {
            let global = rayon::current_num_threads();
            let adopted = adopt_current_thread();
            if global < 2 {
                assert!(!adopted);
                return;
            }
            assert!(adopted);
            assert_eq!(rayon::current_thread_index(), Some(0));
            assert_eq!(rayon::current_num_threads(), global);
            // A second call is a no-op.
            assert!(!adopt_current_thread());
            let sum: u64 = (0..100_000u64).into_par_iter().map(|x| x * 2).sum();
            assert_eq!(sum, 99_999 * 100_000);
            // A job spawned onto the pool runs while this thread waits elsewhere.
            let (tx, rx) = std::sync::mpsc::channel();
            rayon::spawn(move || tx.send(7).unwrap());
            assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(10)), Ok(7));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_rayon_worker_is_left_alone() {
        let adopted = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap()
            .install(adopt_current_thread);
        assert!(!adopted);
    }
}
