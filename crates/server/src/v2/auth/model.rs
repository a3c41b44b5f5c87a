//! etcd's v2 auth records: [`User`], [`Role`] and their permissions, with the JSON etcd
//! stores and answers (Go's field order, `null` for a nil list, `omitempty`), the merges
//! that grant and revoke, and the key checks.
//!
//! A nil list (`None`) and an empty one (`Some(vec![])`) are different, as in Go: they
//! print as `null` and `[]`, and an update that only turns one into the other is still a
//! change (etcd compares with `reflect.DeepEqual`); the derived `PartialEq` is that
//! comparison.

use std::collections::BTreeSet;

use super::error::AuthError;
use super::json::{field_matches, first_value, only_value, Cursor, JsonError};
use crate::v2::format::push_json_str;

/// Where v2 auth lives in the store (etcd's `StorePermsPrefix`).
pub const PERMS_PREFIX: &str = "/2";
/// The switch: `true` or `false`, as JSON.
pub const ENABLED_PATH: &str = "/2/enabled";
/// The role that may do everything; built in, never stored.
pub const ROOT_ROLE: &str = "root";
/// The user that gets [`ROOT_ROLE`] whatever its stored roles say.
pub const ROOT_USER: &str = "root";
/// The role whose permissions apply to requests without credentials.
pub const GUEST_ROLE: &str = "guest";

/// Key patterns: `/foo` is that key, `/foo*` every key starting with `/foo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RwPermission {
    pub read: Option<Vec<String>>,
    pub write: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions {
    pub kv: RwPermission,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Role {
    pub role: String,
    pub permissions: Permissions,
    /// Only in requests (and kept if a create request carried an empty one, as etcd does).
    pub grant: Option<Permissions>,
    pub revoke: Option<Permissions>,
}

#[derive(Clone, Default, PartialEq, Eq)]
pub struct User {
    pub user: String,
    /// The bcrypt hash when stored; the plain password in a request.
    pub password: String,
    pub roles: Option<Vec<String>>,
    /// Only in requests; an empty list is the same as none (`omitempty`).
    pub grant: Vec<String>,
    pub revoke: Vec<String>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("roles", &self.roles)
            .field("grant", &self.grant)
            .field("revoke", &self.revoke)
            .finish()
    }
}

/// etcd's built-in root role.
pub fn root_role() -> Role {
    Role {
        role: ROOT_ROLE.to_string(),
        permissions: all_keys(),
        ..Role::default()
    }
}

/// The guest role etcd creates when auth is enabled without one: every key, both ways.
pub fn default_guest_role() -> Role {
    Role {
        role: GUEST_ROLE.to_string(),
        permissions: all_keys(),
        ..Role::default()
    }
}

fn all_keys() -> Permissions {
    Permissions {
        kv: RwPermission {
            read: Some(vec!["/*".to_string()]),
            write: Some(vec!["/*".to_string()]),
        },
    }
}

// ---- matching keys ----

/// etcd's `simpleMatch`. An empty pattern matches nothing (etcd 3.4 panics on it).
fn simple_match(pattern: &str, key: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => key.starts_with(prefix),
        None => !pattern.is_empty() && key == pattern,
    }
}

/// etcd's `prefixMatch`: only `*` patterns grant a whole subtree.
fn prefix_match(pattern: &str, key: &str) -> bool {
    pattern
        .strip_suffix('*')
        .is_some_and(|p| key.starts_with(p))
}

impl RwPermission {
    fn list(&self, write: bool) -> &[String] {
        let l = if write { &self.write } else { &self.read };
        l.as_deref().unwrap_or_default()
    }

    pub fn has_access(&self, key: &str, write: bool) -> bool {
        self.list(write).iter().any(|p| simple_match(p, key))
    }

    pub fn has_recursive_access(&self, key: &str, write: bool) -> bool {
        self.list(write).iter().any(|p| prefix_match(p, key))
    }

    /// etcd's `RWPermission.Grant`: duplicates (with what is there, or within the request)
    /// are refused; the result is sorted and never nil.
    fn grant(&self, n: &RwPermission) -> Result<RwPermission, AuthError> {
        let add = |have: &Option<Vec<String>>, more: &Option<Vec<String>>, read: bool| {
            let mut set: BTreeSet<String> = have.iter().flatten().cloned().collect();
            for p in more.iter().flatten() {
                if !set.insert(p.clone()) {
                    return Err(if read {
                        AuthError::DuplicateRead(p.clone())
                    } else {
                        AuthError::DuplicateWrite(p.clone())
                    });
                }
            }
            Ok(Some(set.into_iter().collect()))
        };
        Ok(RwPermission {
            read: add(&self.read, &n.read, true)?,
            write: add(&self.write, &n.write, false)?,
        })
    }

    /// etcd's `RWPermission.Revoke`: what is not granted is skipped; sorted, never nil.
    fn revoke(&self, n: &RwPermission) -> RwPermission {
        let remove = |have: &Option<Vec<String>>, less: &Option<Vec<String>>| {
            let mut set: BTreeSet<String> = have.iter().flatten().cloned().collect();
            for p in less.iter().flatten() {
                set.remove(p);
            }
            Some(set.into_iter().collect())
        };
        RwPermission {
            read: remove(&self.read, &n.read),
            write: remove(&self.write, &n.write),
        }
    }
}

impl Permissions {
    /// etcd's `Permissions.IsEmpty` (nil, or no pattern at all).
    pub fn is_empty(p: Option<&Permissions>) -> bool {
        p.is_none_or(|p| p.kv.list(false).is_empty() && p.kv.list(true).is_empty())
    }
}

impl Role {
    pub fn has_key_access(&self, key: &str, write: bool) -> bool {
        self.role == ROOT_ROLE || self.permissions.kv.has_access(key, write)
    }

    pub fn has_recursive_access(&self, key: &str, write: bool) -> bool {
        self.role == ROOT_ROLE || self.permissions.kv.has_recursive_access(key, write)
    }

    /// etcd's `Role.merge`: the request's grant, then its revoke, applied to this role.
    pub fn merge(&self, n: &Role) -> Result<Role, AuthError> {
        let mut permissions = self.permissions.clone();
        if let Some(g) = &n.grant {
            permissions.kv = permissions.kv.grant(&g.kv)?;
        }
        if let Some(r) = &n.revoke {
            permissions.kv = permissions.kv.revoke(&r.kv);
        }
        Ok(Role {
            role: self.role.clone(),
            permissions,
            grant: None,
            revoke: None,
        })
    }
}

impl User {
    /// etcd's `attachRootRole`, which it applies to the user named root when it is read
    /// or created.
    pub fn with_root_role(mut self) -> User {
        let roles = self.roles.get_or_insert_with(Vec::new);
        if !roles.iter().any(|r| r == ROOT_ROLE) {
            roles.push(ROOT_ROLE.to_string());
        }
        self
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().flatten().any(|r| r == role)
    }

    /// etcd's `User.merge`: `new_hash` replaces the password when the request set one;
    /// the request's grants and then revokes apply to the roles (sorted, never nil).
    pub fn merge(&self, nu: &User, new_hash: Option<String>) -> Result<User, AuthError> {
        let mut roles: BTreeSet<String> = self.roles.iter().flatten().cloned().collect();
        for g in &nu.grant {
            if !roles.insert(g.clone()) {
                return Err(AuthError::DuplicateRole {
                    role: g.clone(),
                    user: nu.user.clone(),
                });
            }
        }
        for r in &nu.revoke {
            if !roles.remove(r) {
                return Err(AuthError::UngrantedRole {
                    role: r.clone(),
                    user: nu.user.clone(),
                });
            }
        }
        Ok(User {
            user: self.user.clone(),
            password: new_hash.unwrap_or_else(|| self.password.clone()),
            roles: Some(roles.into_iter().collect()),
            grant: Vec::new(),
            revoke: Vec::new(),
        })
    }
}

// ---- JSON as Go writes it ----

fn push_list(out: &mut String, list: &Option<Vec<String>>) {
    match list {
        None => out.push_str("null"),
        Some(items) => {
            out.push('[');
            for (i, s) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_str(out, s);
            }
            out.push(']');
        }
    }
}

impl Permissions {
    pub fn write_json(&self, out: &mut String) {
        out.push_str("{\"kv\":{\"read\":");
        push_list(out, &self.kv.read);
        out.push_str(",\"write\":");
        push_list(out, &self.kv.write);
        out.push_str("}}");
    }
}

impl Role {
    pub fn write_json(&self, out: &mut String) {
        out.push_str("{\"role\":");
        push_json_str(out, &self.role);
        out.push_str(",\"permissions\":");
        self.permissions.write_json(out);
        for (name, p) in [("grant", &self.grant), ("revoke", &self.revoke)] {
            if let Some(p) = p {
                out.push_str(&format!(",\"{name}\":"));
                p.write_json(out);
            }
        }
        out.push('}');
    }

    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }
}

impl User {
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"user\":");
        push_json_str(&mut out, &self.user);
        if !self.password.is_empty() {
            out.push_str(",\"password\":");
            push_json_str(&mut out, &self.password);
        }
        out.push_str(",\"roles\":");
        push_list(&mut out, &self.roles);
        for (name, list) in [("grant", &self.grant), ("revoke", &self.revoke)] {
            if !list.is_empty() {
                out.push_str(&format!(",\"{name}\":"));
                push_list(&mut out, &Some(list.clone()));
            }
        }
        out.push('}');
        out
    }
}

// ---- JSON as Go reads it ----

fn decode_rw(c: &mut Cursor<'_>, rw: &mut RwPermission) -> Result<(), JsonError> {
    if c.null() {
        return Ok(());
    }
    c.object(|c, key| {
        if field_matches(key, "read") {
            c.into_strings(&mut rw.read)
        } else if field_matches(key, "write") {
            c.into_strings(&mut rw.write)
        } else {
            c.skip()
        }
    })
}

fn decode_permissions(c: &mut Cursor<'_>, p: &mut Permissions) -> Result<(), JsonError> {
    if c.null() {
        return Ok(());
    }
    c.object(|c, key| {
        if field_matches(key, "kv") {
            decode_rw(c, &mut p.kv)
        } else {
            c.skip()
        }
    })
}

/// A `*Permissions` field: `null` clears it, an object decodes into what is there.
fn decode_permissions_ptr(
    c: &mut Cursor<'_>,
    p: &mut Option<Permissions>,
) -> Result<(), JsonError> {
    if c.null() {
        *p = None;
        return Ok(());
    }
    decode_permissions(c, p.get_or_insert_with(Permissions::default))
}

fn decode_role(c: &mut Cursor<'_>, r: &mut Role) -> Result<(), JsonError> {
    if c.null() {
        return Ok(());
    }
    c.object(|c, key| {
        if field_matches(key, "role") {
            c.into_string(&mut r.role)
        } else if field_matches(key, "permissions") {
            decode_permissions(c, &mut r.permissions)
        } else if field_matches(key, "grant") {
            decode_permissions_ptr(c, &mut r.grant)
        } else if field_matches(key, "revoke") {
            decode_permissions_ptr(c, &mut r.revoke)
        } else {
            c.skip()
        }
    })
}

fn decode_user(c: &mut Cursor<'_>, u: &mut User) -> Result<(), JsonError> {
    if c.null() {
        return Ok(());
    }
    let list = |c: &mut Cursor<'_>, v: &mut Vec<String>| {
        let mut o = Some(std::mem::take(v));
        c.into_strings(&mut o)?;
        *v = o.unwrap_or_default();
        Ok(())
    };
    c.object(|c, key| {
        if field_matches(key, "user") {
            c.into_string(&mut u.user)
        } else if field_matches(key, "password") {
            c.into_string(&mut u.password)
        } else if field_matches(key, "roles") {
            c.into_strings(&mut u.roles)
        } else if field_matches(key, "grant") {
            list(c, &mut u.grant)
        } else if field_matches(key, "revoke") {
            list(c, &mut u.revoke)
        } else {
            c.skip()
        }
    })
}

impl Role {
    /// A request body as etcd's `json.NewDecoder(r.Body).Decode(&role)` reads it.
    pub fn from_request(body: &[u8]) -> Result<Role, JsonError> {
        let mut r = Role::default();
        decode_role(&mut Cursor::new(first_value(body)?), &mut r)?;
        Ok(r)
    }

    /// A value stored under `/2/roles/<name>`.
    pub fn from_stored(value: &str) -> Result<Role, JsonError> {
        let mut r = Role::default();
        decode_role(&mut Cursor::new(only_value(value.as_bytes())?), &mut r)?;
        Ok(r)
    }
}

impl User {
    /// A request body as etcd's `json.NewDecoder(r.Body).Decode(&user)` reads it.
    pub fn from_request(body: &[u8]) -> Result<User, JsonError> {
        let mut u = User::default();
        decode_user(&mut Cursor::new(first_value(body)?), &mut u)?;
        Ok(u)
    }

    /// A value stored under `/2/users/<name>`.
    pub fn from_stored(value: &str) -> Result<User, JsonError> {
        let mut u = User::default();
        decode_user(&mut Cursor::new(only_value(value.as_bytes())?), &mut u)?;
        Ok(u)
    }
}

/// The stored `/2/enabled` value means "on" (Go's `json.Unmarshal` into a bool).
pub fn enabled_from_stored(value: &str) -> bool {
    only_value(value.as_bytes()).is_ok_and(|v| v == b"true")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn roles_round_trip_as_go_writes_them() {
        let r = Role::from_request(br#"{"role":"r3","grant":{"kv":{"read":[]}}}"#).unwrap();
        assert_eq!(
            r.to_json(),
            r#"{"role":"r3","permissions":{"kv":{"read":null,"write":null}},"grant":{"kv":{"read":[],"write":null}}}"#
        );
        assert_eq!(Role::from_stored(&r.to_json()).unwrap(), r);
        let dup = br#"{"role":"rx","permissions":{"kv":{"read":["a"]}},"permissions":{"kv":{"write":["b"]}}}"#;
        assert_eq!(
            Role::from_request(dup).unwrap().to_json(),
            r#"{"role":"rx","permissions":{"kv":{"read":["a"],"write":["b"]}}}"#
        );
        assert_eq!(
            root_role().to_json(),
            default_guest_role().to_json().replace("guest", "root")
        );
    }

    #[test]
    fn users_decode_and_encode_as_go() {
        let u = User::from_request(br#"{"USER":"dave","Password":"x","ROLE\u017f":["<&>"]} junk"#)
            .unwrap();
        assert_eq!((u.user.as_str(), u.password.as_str()), ("dave", "x"));
        assert_eq!(
            u.to_json(),
            r#"{"user":"dave","password":"x","roles":["\u003c\u0026\u003e"]}"#
        );
        let u = User::from_request(br#"{"user":"gina","roles":["a","b"],"roles":[null]}"#).unwrap();
        assert_eq!(u.roles, strings(&["a"]));
        assert_eq!(User::from_request(b"null").unwrap(), User::default());
        for bad in [
            &b"{\"user\":5}"[..],
            b"[]",
            b"\"x\"",
            b"{\"roles\":\"x\"}",
            b"",
        ] {
            assert!(
                User::from_request(bad).is_err(),
                "{:?}",
                std::str::from_utf8(bad)
            );
        }
        assert!(User::from_stored(r#"{"user":"a"} x"#).is_err());
        assert!(enabled_from_stored(" true\n") && !enabled_from_stored("false"));
        assert!(!enabled_from_stored("true x") && !enabled_from_stored("\"true\""));
    }

    #[test]
    fn merges_like_etcd() {
        let old = Role {
            role: "r".into(),
            permissions: Permissions {
                kv: RwPermission {
                    read: strings(&["/b", "/a", "/a"]),
                    write: None,
                },
            },
            ..Role::default()
        };
        let grant = |read: &[&str]| Role {
            role: "r".into(),
            grant: Some(Permissions {
                kv: RwPermission {
                    read: strings(read),
                    write: None,
                },
            }),
            ..Role::default()
        };
        let m = old.merge(&grant(&["/c"])).unwrap();
        assert_eq!(m.permissions.kv.read, strings(&["/a", "/b", "/c"]));
        assert_eq!(m.permissions.kv.write, Some(vec![]));
        assert_eq!(
            old.merge(&grant(&["/a"])),
            Err(AuthError::DuplicateRead("/a".into()))
        );
        assert_eq!(
            old.merge(&grant(&["/x", "/x"])),
            Err(AuthError::DuplicateRead("/x".into()))
        );
        let user = User {
            user: "u".into(),
            roles: None,
            ..User::default()
        };
        let grant = User {
            user: "u".into(),
            grant: vec!["b".into(), "a".into()],
            ..User::default()
        };
        let m = user.merge(&grant, None).unwrap();
        assert_eq!(m.roles, strings(&["a", "b"]));
        let revoke = User {
            user: "u".into(),
            revoke: vec!["z".into()],
            ..User::default()
        };
        assert_eq!(
            m.merge(&revoke, None),
            Err(AuthError::UngrantedRole {
                role: "z".into(),
                user: "u".into()
            })
        );
    }

    #[test]
    fn key_checks_like_etcd() {
        let r = Role::from_stored(
            r#"{"role":"r","permissions":{"kv":{"read":["/pub/*","/one","","*"],"write":["/w"]}}}"#,
        )
        .unwrap();
        assert!(r.has_key_access("/pub/", false) && r.has_key_access("/one", false));
        assert!(
            r.has_key_access("", false),
            "`*` matches the key of /v2/keys itself"
        );
        assert!(!r.has_key_access("/w2", true) && r.has_key_access("/w", true));
        assert!(r.has_recursive_access("/pub/x", false));
        assert!(
            !r.has_recursive_access("/w", true),
            "only `*` patterns are recursive"
        );
        let empty =
            Role::from_stored(r#"{"role":"e","permissions":{"kv":{"read":[""]}}}"#).unwrap();
        assert!(!empty.has_key_access("", false) && !empty.has_key_access("/a", false));
        assert!(root_role().has_recursive_access("/anything", true));
    }
}
