//! Time, read once per request and passed down, so tests can move it. The one
//! definition lives in `valet-jose`, shared with `valet-guard`.

pub use valet_jose::{Clock, ManualClock, SystemClock};
