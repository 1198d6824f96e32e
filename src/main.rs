use clap::Parser;
use releasepassport::cli::{Cli, Command, run};

fn main() {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Controller(_)) {
        heap::return_free_memory_periodically();
    }
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(2);
        }
    }
}

/// The controller runs for months and its work comes in bursts (a release
/// train, a relist after a restart): glibc's allocator keeps what a burst
/// freed in its per-thread arenas, so the resident memory stays at the
/// burst's peak. Every 10 seconds the free pages go back to the kernel
/// (`malloc_trim`, a few milliseconds). musl's allocator, in the operator
/// image, returns them by itself.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod heap {
    use std::time::Duration;

    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> std::os::raw::c_int;
    }

    pub fn return_free_memory_periodically() {
        let spawned = std::thread::Builder::new()
            .name("heap-trim".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(Duration::from_secs(10));
                    // SAFETY: malloc_trim only releases free memory of the
                    // allocator's own arenas; it takes no pointer of ours.
                    unsafe {
                        malloc_trim(0);
                    }
                }
            });
        if let Err(e) = spawned {
            eprintln!("warning: not returning free memory periodically: {e}");
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod heap {
    pub fn return_free_memory_periodically() {}
}
