//! The replicated v2 command ([`V2Request`], a protobuf message so that it can travel in
//! `InternalRequest`) and [`apply`], the one dispatch every member runs on it (etcd's
//! `applierV2store`).

use std::time::{SystemTime, UNIX_EPOCH};

pub use chorus_api::internalpb::v2_request::Method;
pub use chorus_api::internalpb::V2Request;

use super::error::V2Error;
use super::store::{Event, V2Store};

/// Unix nanoseconds of `t` (what requests carry); saturates outside of i64.
pub fn unix_nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// The expiry request the leader proposes periodically while some key has a TTL: every
/// member expires the keys whose expiration is not after `now`.
pub fn sync_request(now: SystemTime) -> V2Request {
    V2Request {
        method: Method::Sync as i32,
        time: unix_nanos(now),
        ..Default::default()
    }
}

/// Applies one committed request to the store. `Ok(None)` for SYNC, which has no single
/// result (its `expire` events go to watchers); `Ok(Some(event))` for everything else.
pub fn apply(store: &mut V2Store, r: &V2Request) -> Result<Option<Event>, V2Error> {
    super::auth::guard::check(store, r)?;
    let expire_time = (r.expiration != 0).then_some(r.expiration);
    let now = r.time;
    let cas = r.prev_index > 0 || !r.prev_value.is_empty();
    let event = match r.method() {
        Method::Post => store.create(&r.path, r.dir, &r.val, true, expire_time, now),
        Method::Put => match r.prev_exist {
            Some(true) if !cas => store.update(&r.path, &r.val, expire_time, r.refresh, now),
            Some(true) => store.compare_and_swap(
                &r.path,
                &r.prev_value,
                r.prev_index,
                &r.val,
                expire_time,
                r.refresh,
                now,
            ),
            Some(false) => store.create(&r.path, r.dir, &r.val, false, expire_time, now),
            None if cas => store.compare_and_swap(
                &r.path,
                &r.prev_value,
                r.prev_index,
                &r.val,
                expire_time,
                r.refresh,
                now,
            ),
            None => store.set(&r.path, r.dir, &r.val, expire_time, r.refresh, now),
        },
        Method::Delete if cas => {
            store.compare_and_delete(&r.path, &r.prev_value, r.prev_index, now)
        }
        Method::Delete => store.delete(&r.path, r.dir, r.recursive, now),
        Method::Qget => store.get(&r.path, r.recursive, r.sorted, now),
        Method::Sync => {
            store.delete_expired_keys(r.time);
            return Ok(None);
        }
        Method::Unspecified => return Err(V2Error::raft_internal("etcdserver: unknown method")),
    };
    event.map(Some)
}
