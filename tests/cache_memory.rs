//! What one ReleaseGate costs in the controller's cache, counted by the
//! allocator: the gate as the apiserver sends it (a benchmark gate after its
//! first evaluation, `tests/fixtures/scale/gate.json`, with its managed
//! fields), stripped and held in a reflector store exactly as the controller
//! holds it (packed: `controller::cached_gate`). The controller's budget is
//! 64 MiB with 10,000 gates, of which about 24 MiB is the idle process and
//! the rest is shared by the cache, the controller's queue and whatever a
//! reconcile holds: a cached gate stays under 2.5 KiB (it was 5.2 KiB
//! deserialised). Allocation counts are deterministic, so this is a budget,
//! not a timing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use kube::runtime::reflector;
use kube::runtime::watcher;
use releasepassport::controller::cached_gate::CachedGate;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static BLOCKS: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::SeqCst);
        BLOCKS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::SeqCst);
        BLOCKS.fetch_sub(1, Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// glibc's malloc adds a header of 8 bytes and rounds every block up to 16.
fn with_malloc_overhead(bytes: isize, blocks: isize) -> isize {
    bytes + blocks * 16
}

const GATES: usize = 2000;

#[test]
fn a_cached_gate_costs_under_two_and_a_half_kib() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/scale/gate.json"
    ))
    .expect("fixture");
    // The wire form of each gate: a new name and uid each, as from the apiserver.
    let wire: Vec<String> = (0..GATES)
        .map(|i| {
            text.replace("gate-00001", &format!("gate-{i:05}")).replace(
                "631ea80d-323a-41d1-87bf-415d9fc2608e",
                &format!("631ea80d-323a-41d1-87bf-{i:012}"),
            )
        })
        .collect();

    let (reader, mut writer) = reflector::store::<CachedGate>();
    let (bytes_before, blocks_before) =
        (LIVE.load(Ordering::SeqCst), BLOCKS.load(Ordering::SeqCst));
    writer.apply_watcher_event(&watcher::Event::Init);
    for json in &wire {
        // As the watch delivers it: deserialised straight into the cache's form.
        let gate: CachedGate = serde_json::from_str(json).expect("gate");
        writer.apply_watcher_event(&watcher::Event::InitApply(gate));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    let bytes = LIVE.load(Ordering::SeqCst) - bytes_before;
    let blocks = BLOCKS.load(Ordering::SeqCst) - blocks_before;
    assert_eq!(reader.state().len(), GATES);

    let per_gate = with_malloc_overhead(bytes, blocks) / GATES as isize;
    let wire_per_gate = wire.iter().map(String::len).sum::<usize>() / GATES;
    println!(
        "a cached gate: {} bytes in {} blocks ({} with malloc's overhead); {} bytes on the wire",
        bytes / GATES as isize,
        blocks / GATES as isize,
        per_gate,
        wire_per_gate
    );
    assert!(
        per_gate < 2560,
        "a cached gate costs {per_gate} bytes (budget 2560)"
    );
    drop(writer);
}
