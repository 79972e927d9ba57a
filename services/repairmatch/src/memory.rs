//! Giving the allocator's freed pages back to the system after a snapshot build.

/// Returns to the system the pages a snapshot build's temporaries held: on
/// every thread of the current rayon pool (run it inside the pool that ran
/// the build) and on the calling thread, once the build's temporaries are
/// dropped.
///
/// The service runs on mimalloc (`main.rs`), which keeps a thread's freed
/// pages and purges them only when that thread next allocates. A build frees
/// its temporaries on the pool's threads and then leaves them idle, so those
/// pages stayed resident until the next build: 27 MiB after a 100k start and
/// 137 MiB after a 1M one (VmRSS at SERVING, 287 → 260 and 2,070 → 1,933 MiB).
/// A snapshot replaced by a new one is freed into its builders' pages too,
/// so once one is replaced every pool collects again
/// (`app::return_freed_pages_on_every_pool`).
/// On a thread where mimalloc never allocated (the tests run on the system
/// allocator) it does nothing.
pub fn return_freed_pages() {
    rayon::broadcast(|_| collect_freed_pages());
    collect_freed_pages();
}

#[allow(unsafe_code)]
fn collect_freed_pages() {
    // SAFETY: `mi_collect` takes no pointer and frees only pages mimalloc
    // holds free; it may be called from any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
