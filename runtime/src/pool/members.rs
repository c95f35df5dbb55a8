//! Which of a pool's subchannels take calls. Each endpoint has `max_size` subchannels,
//! made when the channel is (a spare costs its handle and an idle driver task, no
//! socket); the first `active` of them are in the picks. Growth (gRFC A105) makes one
//! more active, cleanup makes the last one inactive again; both are a compare-and-swap on
//! the endpoint's count, so the call path takes no lock. A `dns:///` name has a group
//! per address it may resolve to, active only while the name resolves to it.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// One endpoint's subchannels: `start..start + len`, the first `active` in use.
#[derive(Debug)]
struct Group {
    start: usize,
    len: usize,
    active: AtomicUsize,
}

/// The active subchannels of a pool, by endpoint.
#[derive(Debug)]
pub(crate) struct Members {
    groups: Vec<Group>,
    /// The active count each endpoint shrinks back to.
    size: usize,
    /// Whether a `dns:///` name is still being resolved, or failed to: what the channel
    /// is while no subchannel is active.
    resolution: AtomicU8,
}

/// No name to resolve, or it resolved.
pub(crate) const RESOLVED: u8 = 0;
/// The first resolution is under way.
pub(crate) const RESOLVING: u8 = 1;
/// The last resolution failed.
pub(crate) const RESOLVE_FAILED: u8 = 2;

impl Members {
    /// `groups` groups of `max_size` subchannels, each with the given number active at
    /// first (`size`, or 0 for an address a name may resolve to).
    pub(crate) fn new(groups: &[usize], size: usize, max_size: usize) -> Self {
        let groups = groups
            .iter()
            .enumerate()
            .map(|(g, active)| Group {
                start: g * max_size,
                len: max_size,
                active: AtomicUsize::new((*active).min(max_size)),
            })
            .collect();
        Self {
            groups,
            size,
            resolution: AtomicU8::new(RESOLVED),
        }
    }

    /// Sets how many subchannels of group `group` are active (a name resolved to its
    /// address, or no longer does).
    pub(crate) fn set_active(&self, group: usize, active: usize) {
        if let Some(g) = self.groups.get(group) {
            g.active.store(active.min(g.len), Ordering::Release);
        }
    }

    /// The subchannels of group `group`, active or not.
    pub(crate) fn group(&self, group: usize) -> std::ops::Range<usize> {
        self.groups
            .get(group)
            .map_or(0..0, |g| g.start..g.start + g.len)
    }

    /// The active count endpoints start with and shrink back to.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Records where name resolution stands ([`RESOLVED`], [`RESOLVING`],
    /// [`RESOLVE_FAILED`]).
    pub(crate) fn set_resolution(&self, state: u8) {
        self.resolution.store(state, Ordering::Release);
    }

    /// Where name resolution stands.
    pub(crate) fn resolution(&self) -> u8 {
        self.resolution.load(Ordering::Acquire)
    }

    /// Every subchannel active (a pool made of given subchannels, in tests).
    #[cfg(test)]
    pub(crate) fn all(count: usize) -> Self {
        Self {
            groups: vec![Group {
                start: 0,
                len: count,
                active: AtomicUsize::new(count),
            }],
            size: count,
            resolution: AtomicU8::new(RESOLVED),
        }
    }

    /// How many subchannels exist, active or not.
    #[cfg(test)]
    pub(crate) fn total(&self) -> usize {
        self.groups.iter().map(|g| g.len).sum()
    }

    /// Whether the subchannel at `index` takes calls.
    pub(crate) fn is_active(&self, index: usize) -> bool {
        self.groups.iter().any(|g| {
            (g.start..g.start + g.len).contains(&index)
                && index - g.start < g.active.load(Ordering::Acquire)
        })
    }

    /// The active subchannels' indices, endpoint by endpoint.
    pub(crate) fn active(&self) -> impl Iterator<Item = usize> + '_ {
        self.groups
            .iter()
            .flat_map(|g| g.start..g.start + g.active.load(Ordering::Acquire))
    }

    /// How many subchannels are active.
    pub(crate) fn active_count(&self) -> usize {
        self.groups
            .iter()
            .map(|g| g.active.load(Ordering::Acquire))
            .sum()
    }

    /// An active subchannel at random (each equally likely), if there is one.
    pub(crate) fn random(&self) -> Option<usize> {
        let count = self.active_count();
        if count == 0 {
            return None;
        }
        let mut n = fastrand::usize(..count);
        for g in &self.groups {
            let active = g.active.load(Ordering::Acquire);
            if n < active {
                return Some(g.start + n);
            }
            n -= active;
        }
        // Another thread shrank a group between the two loads: take any active one.
        self.active().next()
    }

    /// The active subchannels of the endpoint `index` belongs to.
    pub(crate) fn siblings(&self, index: usize) -> std::ops::Range<usize> {
        self.group_of(index).map_or(index..index + 1, |g| {
            g.start..g.start + g.active.load(Ordering::Acquire)
        })
    }

    fn group_of(&self, index: usize) -> Option<&Group> {
        self.groups
            .iter()
            .find(|g| (g.start..g.start + g.len).contains(&index))
    }

    /// Makes one more subchannel of `index`'s endpoint active, if it has a spare and its
    /// active count is still `seen` (the caller saw every one of them full); returns it.
    pub(crate) fn grow(&self, index: usize, seen: usize) -> Option<usize> {
        let g = self.group_of(index)?;
        if seen >= g.len {
            return None;
        }
        g.active
            .compare_exchange(seen, seen + 1, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| g.start + seen)
    }

    /// For each endpoint grown past `size`: its last active subchannel and how many are
    /// active.
    pub(crate) fn grown(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.groups.iter().filter_map(|g| {
            let active = g.active.load(Ordering::Acquire);
            (active > self.size).then(|| (g.start + active - 1, active))
        })
    }

    /// Makes the last active subchannel of `index`'s endpoint inactive, if its active
    /// count is still `seen`; returns it.
    pub(crate) fn shrink(&self, index: usize, seen: usize) -> Option<usize> {
        let g = self.group_of(index)?;
        if seen <= self.size {
            return None;
        }
        g.active
            .compare_exchange(seen, seen - 1, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| g.start + seen - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_max_size_and_shrinks_back_to_size() {
        let members = Members::new(&[1, 1], 1, 3);
        assert_eq!(members.total(), 6);
        assert_eq!(members.active().collect::<Vec<_>>(), [0, 3]);
        assert_eq!(members.grow(3, 1), Some(4));
        assert_eq!(members.grow(3, 1), None, "someone else grew it first");
        assert_eq!(members.grow(4, 2), Some(5));
        assert_eq!(members.grow(5, 3), None, "at max_size");
        assert_eq!(members.active().collect::<Vec<_>>(), [0, 3, 4, 5]);
        assert_eq!(members.siblings(4), 3..6);
        assert!(members.is_active(5) && !members.is_active(1));
        assert_eq!(members.grown().collect::<Vec<_>>(), [(5, 3)]);
        assert_eq!(members.shrink(5, 3), Some(5));
        assert_eq!(members.shrink(4, 2), Some(4));
        assert_eq!(members.shrink(3, 1), None, "never below size");
        assert_eq!(members.active().collect::<Vec<_>>(), [0, 3]);
    }

    #[test]
    fn random_picks_only_active_ones_and_each_of_them() {
        let members = Members::new(&[2, 2], 2, 4);
        let mut seen = [0; 8];
        for _ in 0..4000 {
            seen[members.random().unwrap()] += 1;
        }
        for index in [0, 1, 4, 5] {
            assert!(seen[index] > 700, "{seen:?}");
        }
        for index in [2, 3, 6, 7] {
            assert_eq!(seen[index], 0, "{seen:?}");
        }
    }
}
