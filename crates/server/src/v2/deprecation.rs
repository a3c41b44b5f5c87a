//! `--v2-deprecation` at start-up (etcd's `assertNoV2StoreContent`): from `write-only` on
//! the v2 store may hold only what etcd can rebuild from the backend (the membership under
//! `/0`); keys or v2 auth data ("custom content") stop the member, or are only warned
//! about under `not-yet` and `write-only-skip-check`.

use chorus_config::V2Deprecation;

use super::store::{V2Store, CLUSTER_PREFIX};

/// The store holds more than the membership, at `stage` that refuses it.
#[derive(Debug, thiserror::Error)]
#[error("detected disallowed custom content in v2store for stage --v2-deprecation={0}")]
pub struct DisallowedContent(pub V2Deprecation);

/// Whether the store holds anything but the membership (etcd's `IsMetaStoreOnly`,
/// negated): a top-level directory other than `/0` with something in it.
pub fn has_custom_content(store: &V2Store) -> bool {
    let Ok(root) = store.get("/", true, false, 0) else {
        return false;
    };
    let children = root.node.as_ref().and_then(|n| n.nodes.as_ref());
    children.is_some_and(|nodes| {
        nodes
            .iter()
            .any(|n| n.key != CLUSTER_PREFIX && n.nodes.as_ref().is_some_and(|c| !c.is_empty()))
    })
}

/// etcd's check when a member recovers its v2 store.
pub fn check(store: &V2Store, stage: V2Deprecation) -> Result<(), DisallowedContent> {
    if !has_custom_content(store) {
        return Ok(());
    }
    match stage {
        V2Deprecation::NotYet => {
            tracing::warn!("detected custom v2store content. Etcd v3.5 is the last version allowing to access it using API v2. Please remove the content.");
            Ok(())
        }
        V2Deprecation::WriteOnlySkipCheck => {
            tracing::warn!("WARNING: --v2-deprecation=write-only-skip-check is enabled; v2 content detected, but validation check is being bypassed");
            Ok(())
        }
        stage => {
            let e = DisallowedContent(stage);
            tracing::error!(error = %e, "illegal v2store content");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(paths: &[&str]) -> V2Store {
        let mut s = V2Store::new();
        for p in paths {
            s.set(p, false, "v", None, false, 0).unwrap();
        }
        s
    }

    #[test]
    fn membership_alone_is_not_custom_content() {
        let s = store_with(&["/0/members/1/attributes", "/0/version"]);
        assert!(!has_custom_content(&s));
        assert!(check(&s, V2Deprecation::Gone).is_ok());
    }

    #[test]
    fn keys_are_refused_from_write_only_on() {
        let s = store_with(&["/0/version", "/1/foo"]);
        assert!(has_custom_content(&s));
        assert!(check(&s, V2Deprecation::NotYet).is_ok());
        assert!(check(&s, V2Deprecation::WriteOnlySkipCheck).is_ok());
        let e = check(&s, V2Deprecation::WriteOnly).unwrap_err();
        assert_eq!(
            e.to_string(),
            "detected disallowed custom content in v2store for stage --v2-deprecation=write-only"
        );
        assert!(check(&s, V2Deprecation::WriteOnlyDropData).is_err());
    }
}
