//! Waiting in `poll` until a deadline.

use std::time::Duration;

use nix::poll::PollTimeout;

/// The `poll(2)` timeout for a wait of `left`: rounded *up* to whole milliseconds, and capped
/// at poll's maximum. Rounded down, a wait would end just short of its deadline, and the last
/// fraction of a millisecond would become a busy loop of 0 ms polls.
pub fn poll_timeout(left: Duration) -> PollTimeout {
    PollTimeout::try_from(left.as_micros().div_ceil(1000)).unwrap_or(PollTimeout::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(left: Duration) -> i32 {
        i32::from(poll_timeout(left))
    }

    #[test]
    fn rounds_up_to_whole_milliseconds_and_saturates() {
        assert_eq!(ms(Duration::ZERO), 0);
        assert_eq!(ms(Duration::from_micros(1)), 1);
        assert_eq!(ms(Duration::from_micros(1500)), 2);
        assert_eq!(ms(Duration::from_millis(250)), 250);
        assert_eq!(ms(Duration::from_secs(u64::MAX)), i32::MAX);
    }
}
