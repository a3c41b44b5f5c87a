//! The v2 auth rules that must hold whatever order concurrent requests commit in, checked
//! by every member when it applies a v2 request (the auth store checks them too, but from
//! a read that a request through another member may overtake):
//!
//! - the root user is not deleted (nor a directory above it) while auth is enabled;
//! - auth is not switched on while there is no root user.
//!
//! etcd 3.4 checks both only before proposing, so two members can together lock a cluster
//! out. A refused request fails with error 101 (the auth store turns it into etcd's
//! message); nothing else is affected, so requests etcd would apply are applied alike.

use chorus_api::internalpb::v2_request::Method;
use chorus_api::internalpb::V2Request;

use super::model::{enabled_from_stored, ENABLED_PATH, ROOT_USER};
use crate::v2::error::{ecode, V2Error};
use crate::v2::format::{clean, join};
use crate::v2::store::V2Store;

fn root_user_path() -> String {
    format!("/2/users/{ROOT_USER}")
}

fn refused(store: &V2Store, why: &str) -> V2Error {
    V2Error::new(ecode::TEST_FAILED, why, store.index())
}

/// Refuses `r` if applying it would break one of the rules above.
pub fn check(store: &V2Store, r: &V2Request) -> Result<(), V2Error> {
    let path = clean(&join(&["/", &r.path]));
    match r.method() {
        Method::Delete => {
            let root = root_user_path();
            let above_root = root == path || root.starts_with(&format!("{path}/"));
            let enabled = store
                .peek_file(ENABLED_PATH)
                .is_some_and(enabled_from_stored);
            if above_root && enabled {
                return Err(refused(
                    store,
                    "auth: the root user is needed while auth is enabled",
                ));
            }
        }
        Method::Put | Method::Post
            if path == ENABLED_PATH
                && enabled_from_stored(&r.val)
                && store.peek_file(&root_user_path()).is_none() =>
        {
            return Err(refused(store, "auth: no root user to enable auth with"));
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, path: &str, val: &str) -> V2Request {
        V2Request {
            method: method as i32,
            path: path.into(),
            val: val.into(),
            ..Default::default()
        }
    }

    #[test]
    fn root_stays_while_enabled_and_enabling_needs_root() {
        let mut s = V2Store::new();
        let enable = req(Method::Put, "/2/enabled", "true");
        let delete_root = req(Method::Delete, "/2/users/root", "");
        assert_eq!(check(&s, &enable).unwrap_err().code, ecode::TEST_FAILED);
        s.create("/2/users/root", false, "{}", false, None, 0)
            .unwrap();
        s.create("/2/enabled", false, "false", false, None, 0)
            .unwrap();
        assert!(check(&s, &enable).is_ok());
        assert!(check(&s, &delete_root).is_ok(), "auth is off");
        s.set("/2/enabled", false, "true", None, false, 0).unwrap();
        assert!(check(&s, &delete_root).is_err());
        assert!(check(&s, &req(Method::Delete, "/2//users", "")).is_err());
        assert!(check(&s, &req(Method::Delete, "/2/users/rooty", "")).is_ok());
        assert!(check(&s, &req(Method::Delete, "/1/x", "")).is_ok());
        assert!(check(&s, &req(Method::Put, "/2/enabled", "false")).is_ok());
    }
}
