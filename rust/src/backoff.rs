//! Restart policy for supervised children: 1, 2, 4, 8, 16, then 30 seconds.
//!
//! The sequence is perago 0.6's; a crash-looping child backs off without ever
//! stopping the supervisor, and the slot's counter resets after a healthy run.

use std::time::Duration;

/// Delays for the first restarts of a slot, in seconds.
pub const RESTART_BACKOFF_SECONDS: [u64; 5] = [1, 2, 4, 8, 16];
/// Delay for every restart past the explicit sequence, in seconds.
pub const MAX_RESTART_BACKOFF_SECONDS: u64 = 30;

/// Seconds to wait before the restart that follows `restart_count` earlier restarts.
pub fn restart_backoff_seconds(restart_count: u64) -> u64 {
    usize::try_from(restart_count)
        .ok()
        .and_then(|index| RESTART_BACKOFF_SECONDS.get(index).copied())
        .unwrap_or(MAX_RESTART_BACKOFF_SECONDS)
}

/// [`restart_backoff_seconds`] as a [`Duration`].
pub fn restart_backoff(restart_count: u64) -> Duration {
    Duration::from_secs(restart_backoff_seconds(restart_count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sequence_matches_perago_06() {
        let delays: Vec<u64> = (0..8).map(restart_backoff_seconds).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 30, 30, 30]);
    }

    proptest! {
        #[test]
        fn never_decreases_and_is_capped(count in 0u64..u64::MAX) {
            let delay = restart_backoff_seconds(count);
            prop_assert!(delay <= MAX_RESTART_BACKOFF_SECONDS);
            prop_assert!(delay >= 1);
            prop_assert!(restart_backoff_seconds(count.saturating_add(1)) >= delay);
        }
    }
}
