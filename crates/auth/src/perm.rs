//! The permission cache: for each user, the union of its roles' key permissions as sorted,
//! merged intervals (etcd's `rangePermCache` / `unifiedRangePermissions`), one list for
//! READ and one for WRITE. A check is a binary search.
//!
//! Key ranges follow etcd (`range_perm_cache.go`):
//! - `range_end` empty: the single key `key`, i.e. `[key, key + "\0")`;
//! - `range_end == "\0"`: every key `>= key` (open-ended; `key == "\0"` too means all keys);
//! - otherwise `[key, range_end)`.
//!
//! Intervals that touch (`end == next.begin`) are merged, as etcd's interval-tree `Contains`
//! treats them as contiguous. A request for a single key is permitted when some interval
//! holds the key; a request for a range when one merged interval covers all of it.

use chorus_api::authpb::{permission::Type as PermType, Permission};

/// An interval's upper bound: a key (exclusive) or past every key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum End {
    Key(Box<[u8]>),
    Unbounded,
}

impl End {
    /// `self >= key`: an interval ending here reaches (touches or passes) `key`.
    fn reaches(&self, key: &[u8]) -> bool {
        match self {
            End::Unbounded => true,
            End::Key(e) => &**e >= key,
        }
    }

    /// `self > key`: an interval ending here holds `key` if it began at or before it.
    fn above(&self, key: &[u8]) -> bool {
        match self {
            End::Unbounded => true,
            End::Key(e) => &**e > key,
        }
    }
}

/// `[begin, end)`, never empty once built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interval {
    pub begin: Box<[u8]>,
    pub end: End,
}

impl Interval {
    /// The interval a permission (or request) names; `None` when it holds no key (an empty
    /// `key`, or `range_end <= key` that is not the open-ended `"\0"`).
    pub fn of(key: &[u8], range_end: &[u8]) -> Option<Interval> {
        if key.is_empty() {
            return None;
        }
        let end = if range_end.is_empty() {
            let mut e = Vec::with_capacity(key.len() + 1);
            e.extend_from_slice(key);
            e.push(0);
            End::Key(e.into())
        } else if range_end == [0] {
            End::Unbounded
        } else if range_end > key {
            End::Key(range_end.into())
        } else {
            return None;
        };
        Some(Interval {
            begin: key.into(),
            end,
        })
    }
}

/// Sorted, disjoint, non-touching intervals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntervalSet {
    ivs: Vec<Interval>,
}

impl IntervalSet {
    /// Sorts and merges overlapping or touching intervals.
    pub fn from_intervals(mut ivs: Vec<Interval>) -> IntervalSet {
        ivs.sort_by(|a, b| a.begin.cmp(&b.begin));
        let mut merged: Vec<Interval> = Vec::with_capacity(ivs.len());
        for iv in ivs {
            match merged.last_mut() {
                // Overlapping or touching (`last.end >= iv.begin`): one interval.
                Some(last) if last.end.reaches(&iv.begin) => {
                    if last.end < iv.end {
                        last.end = iv.end;
                    }
                }
                _ => merged.push(iv),
            }
        }
        IntervalSet { ivs: merged }
    }

    pub fn intervals(&self) -> &[Interval] {
        &self.ivs
    }

    /// The last interval beginning at or before `key`.
    fn floor(&self, key: &[u8]) -> Option<&Interval> {
        let i = self.ivs.partition_point(|iv| &*iv.begin <= key);
        i.checked_sub(1).map(|i| &self.ivs[i])
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.floor(key).is_some_and(|iv| iv.end.above(key))
    }

    /// Whether the request `[key, range_end)` (etcd's forms, see the module docs) is covered.
    /// An empty `range_end` asks for the single key. A request whose range holds no key
    /// (`range_end <= key`) is judged by `key` alone, as etcd's interval tree does. An empty
    /// `key` is never covered (etcd's handlers refuse it before any check).
    pub fn covers(&self, key: &[u8], range_end: &[u8]) -> bool {
        if range_end.is_empty() {
            return self.contains_key(key);
        }
        if range_end == [0] {
            return self.floor(key).is_some_and(|iv| iv.end == End::Unbounded);
        }
        if range_end <= key {
            return self.contains_key(key);
        }
        self.floor(key).is_some_and(|iv| iv.end.reaches(range_end))
    }
}

/// One user's merged permissions, or the root shortcut.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserPerms {
    /// The user holds the `root` role: every key, and admin requests.
    pub is_root: bool,
    /// The role names the user holds (for etcd's `HasRole`).
    pub roles: Vec<Box<str>>,
    pub read: IntervalSet,
    pub write: IntervalSet,
}

impl UserPerms {
    /// Merges the permissions of a user's roles (roles that do not exist add nothing).
    pub fn build<'a>(
        is_root: bool,
        roles: Vec<Box<str>>,
        perms: impl IntoIterator<Item = &'a Permission>,
    ) -> UserPerms {
        let (mut read, mut write) = (Vec::new(), Vec::new());
        for p in perms {
            let Some(iv) = Interval::of(&p.key, &p.range_end) else {
                continue;
            };
            match PermType::try_from(p.perm_type) {
                Ok(PermType::Read) => read.push(iv),
                Ok(PermType::Write) => write.push(iv),
                Ok(PermType::Readwrite) => {
                    read.push(iv.clone());
                    write.push(iv);
                }
                Err(_) => {}
            }
        }
        UserPerms {
            is_root,
            roles,
            read: IntervalSet::from_intervals(read),
            write: IntervalSet::from_intervals(write),
        }
    }
}

/// Whether a permission's range is one etcd 3.5 accepts (`isValidPermissionRange`): a
/// non-empty key and a range end that is empty, `"\0"`, or above the key.
pub fn is_valid_permission_range(key: &[u8], range_end: &[u8]) -> bool {
    !key.is_empty() && (range_end.is_empty() || range_end == [0] || range_end > key)
}

#[cfg(test)]
mod tests;
