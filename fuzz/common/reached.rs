//! `reached!("what")`: with `FUZZ_TRACE` set in the environment, prints what an input
//! reached (an accepting path), so a run over the seeds shows that the target's
//! invariants are exercised and not vacuous:
//!
//!   FUZZ_TRACE=1 cargo fuzz run <target> corpus/<target> -- -runs=0 2>&1 | grep reached
//!
//! Without it, one relaxed load of a flag per call.

use std::sync::LazyLock;

pub static TRACE: LazyLock<bool> = LazyLock::new(|| std::env::var_os("FUZZ_TRACE").is_some());

macro_rules! reached {
    ($($arg:tt)*) => {
        if *crate::reached::TRACE {
            eprintln!("reached: {}", format_args!($($arg)*));
        }
    };
}
pub(crate) use reached;
