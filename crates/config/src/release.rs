//! The etcd releases chorus follows, and the bits the flag and gate tables
//! mark them with.

/// etcd 3.4 defines a flag or gate.
pub(crate) const R34: u8 = 1;
/// etcd 3.5 defines a flag or gate.
pub(crate) const R35: u8 = 2;
/// etcd 3.6 defines a flag or gate.
pub(crate) const R36: u8 = 4;
/// etcd 3.7 defines a flag or gate.
pub(crate) const R37: u8 = 8;

/// An etcd minor release whose flags chorus accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EtcdRelease {
    /// etcd 3.4 (3.4.23; 3.4.25+ and 3.4.31+ added a few flags).
    V3_4,
    /// etcd 3.5 (any 3.5.x; 3.5.33 is the newest read).
    V3_5,
    /// etcd 3.6 (3.6.14).
    V3_6,
    /// etcd 3.7 (3.7.1).
    V3_7,
}

impl EtcdRelease {
    /// Every release, oldest first.
    pub const ALL: [EtcdRelease; 4] = [
        EtcdRelease::V3_4,
        EtcdRelease::V3_5,
        EtcdRelease::V3_6,
        EtcdRelease::V3_7,
    ];

    /// `3.4`, `3.5`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            EtcdRelease::V3_4 => "3.4",
            EtcdRelease::V3_5 => "3.5",
            EtcdRelease::V3_6 => "3.6",
            EtcdRelease::V3_7 => "3.7",
        }
    }

    pub(crate) fn bit(self) -> u8 {
        match self {
            EtcdRelease::V3_4 => R34,
            EtcdRelease::V3_5 => R35,
            EtcdRelease::V3_6 => R36,
            EtcdRelease::V3_7 => R37,
        }
    }
}
