//! v2 auth over HTTP, end to end over the raft-less `LocalBackend` (bcrypt at its minimum
//! cost, so that the many password checks stay fast).
//!
//! [`ETCD`] was recorded from etcd 3.4.23 (`etcd --enable-v2 --name n1
//! --advertise-client-urls http://127.0.0.1:23790 --initial-advertise-peer-urls
//! http://127.0.0.1:23800`, fresh data dir), sending its requests in order with their basic
//! credentials: status, body (and whether it ends with a newline), and which headers came
//! (`json`/`text`/`html` content type, `cluster` for `X-Etcd-Cluster-Id`, `index=N` for
//! `X-Etcd-Index`, `allow=`, `location=`). The backend makes etcd's three bootstrap writes,
//! so indexes line up. Two things are adjusted, both documented in docs/compatibility.md:
//! etcd counts one failed get more in `/v2/stats/store` from its start-up (taken off), and
//! chorus makes user and role updates compare-and-swaps, so `/v2/stats/store` is compared
//! with update and compare-and-swap counts added up (`cas_updates_are_counted` checks the
//! split).

use std::sync::Arc;

use axum::body::Body;
use axum::Router;
use chorus_server::api::v2::local::LocalBackend;
use chorus_server::api::v2::{router_with, MemberInfo, V2Backend};
use chorus_server::net::ClientIdentity;
use chorus_server::v2::auth::Passwords;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

type Step = (
    &'static str,
    &'static str,
    Option<&'static str>,
    u16,
    &'static str,
    bool,
    &'static str,
);

/// (method and target, `name:password` or `raw:<Authorization>` or "", body (`form:` for
/// a form, else JSON), status, body, ends with a newline, headers).
#[rustfmt::skip]
const ETCD: &[Step] = &[
    // Nothing yet, auth off: the lists, the root role, the switch's refusals.
    (r#"GET /v2/auth/enable"#, r#""#, None, 200, r#"{"enabled":false}"#, true, r#"json cluster"#),
    (r#"GET /v2/auth/users"#, r#""#, None, 200, r#"{"users":null}"#, true, r#"json cluster"#),
    (r#"GET /v2/auth/roles"#, r#""#, None, 200, r#"{"roles":[{"role":"root","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}]}"#, true, r#"json cluster"#),
    (r#"GET /v2/auth/users/alice"#, r#""#, None, 404, r#"{"message":"auth: User alice does not exist."}"#, false, r#"json cluster"#),
    (r#"GET /v2/auth/roles/guest"#, r#""#, None, 404, r#"{"message":"auth: Role guest does not exist."}"#, false, r#"json cluster"#),
    (r#"GET /v2/auth/roles/root"#, r#""#, None, 200, r#"{"role":"root","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}"#, true, r#"json cluster"#),
    (r#"DELETE /v2/auth/enable"#, r#""#, None, 409, r#"{"message":"auth: already disabled"}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/enable"#, r#""#, None, 409, r#"{"message":"auth: No root user available, please create one"}"#, false, r#"json cluster"#),
    (r#"GET /v2/keys/"#, r#""#, None, 200, r#"{"action":"get","node":{"dir":true}}"#, true, r#"json cluster index=3"#),
    (r#"GET /v2/stats/store"#, r#""#, None, 200, r#"{"getsSuccess":1,"getsFail":18,"setsSuccess":2,"setsFail":0,"deleteSuccess":0,"deleteFail":0,"updateSuccess":0,"updateFail":0,"createSuccess":1,"createFail":0,"compareAndSwapSuccess":0,"compareAndSwapFail":0,"compareAndDeleteSuccess":0,"compareAndDeleteFail":0,"expireCount":0,"watchers":0}"#, false, r#"json"#),
    // Users: create (the first write makes /2, /2/users, /2/roles and /2/enabled: 4 indexes),
    // password change, grants and revokes (of roles that may not exist), refusals.
    (r#"PUT /v2/auth/users/root"#, r#""#, Some(r#"{"user":"root","password":"rootpw"}"#), 201, r#"{"user":"root","roles":["root"]}"#, true, r#"json cluster"#),
    (r#"GET /v2/keys/"#, r#""#, None, 200, r#"{"action":"get","node":{"dir":true}}"#, true, r#"json cluster index=8"#),
    (r#"PUT /v2/auth/users/alice"#, r#""#, Some(r#"{"user":"alice","password":"alicepw"}"#), 201, r#"{"user":"alice","roles":null}"#, true, r#"json cluster"#),
    (r#"PUT /v2/auth/users/alice"#, r#""#, Some(r#"{"user":"alice","password":"alicepw"}"#), 200, r#"{"user":"alice","roles":[]}"#, true, r#"json cluster"#),
    (r#"PUT /v2/auth/users/alice"#, r#""#, Some(r#"{"user":"alice"}"#), 400, r#"{"message":"auth: User not updated. Use grant/revoke/password to update the user."}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/users/bob"#, r#""#, Some(r#"{"user":"bob","roles":["r1"]}"#), 400, r#"{"message":"auth: Cannot create user bob with an empty password"}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/users/bob"#, r#""#, Some(r#"{"user":"bob","password":"bobpw","roles":["r1","r1"]}"#), 200, r#"{"user":"bob","roles":["r1","r1"]}"#, true, r#"json cluster"#),
    (r#"PUT /v2/auth/users/bob"#, r#""#, Some(r#"{"user":"bob","password":"x","roles":["r1"]}"#), 409, r#"{"message":"auth: User bob already exists."}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/users/carol"#, r#""#, Some(r#"{"user":"carol","grant":["r1"]}"#), 404, r#"{"message":"auth: User carol does not exist."}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/users/alice"#, r#""#, Some(r#"{"user":"alice","grant":["r1","ghost"]}"#), 200, r#"{"user":"alice","roles":["ghost","r1"]}"#, true, r#"json cluster"#),
    (r#"PUT /v2/auth/users/alice"#, r#""#, Some(r#"{"user":"alice","grant":["r1"]}"#), 409, r#"{"message":"auth: Granting duplicate role r1 for user alice"}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/users/alice"#, r#""#, Some(r#"{"user":"alice","revoke":["zz"]}"#), 409, r#"{"message":"auth: Revoking ungranted role zz for user alice"}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/users/alice"#, r#""#, Some(r#"{"user":"alice","revoke":["ghost"],"roles":["x"]}"#), 400, r#"{"message":"User JSON contains both roles and grant/revoke"}"#, false, r#"json cluster"#),
    (r#"GET /v2/auth/users/alice"#, r#""#, None, 404, r#"{"message":"auth: Role ghost does not exist."}"#, false, r#"json cluster"#),
    (r#"GET /v2/auth/users"#, r#""#, None, 200, r#"{"users":[{"user":"alice"},{"user":"bob"},{"user":"root","roles":[{"role":"root","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}]}]}"#, true, r#"json cluster"#),
    (r#"DELETE /v2/auth/users/carol"#, r#""#, None, 404, r#"{"message":"auth: User carol does not exist"}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/users/root"#, r#""#, Some(r#"{"user":"root","revoke":["root"]}"#), 200, r#"{"user":"root","roles":[]}"#, true, r#"json cluster"#),
    (r#"GET /v2/auth/users/root"#, r#""#, None, 200, r#"{"user":"root","roles":[{"role":"root","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}]}"#, true, r#"json cluster"#),
    (r#"GET /v2/keys/"#, r#""#, None, 200, r#"{"action":"get","node":{"dir":true}}"#, true, r#"json cluster index=13"#),
    (r#"GET /v2/stats/store"#, r#""#, None, 200, r#"{"getsSuccess":36,"getsFail":27,"setsSuccess":2,"setsFail":0,"deleteSuccess":0,"deleteFail":1,"updateSuccess":3,"updateFail":0,"createSuccess":8,"createFail":1,"compareAndSwapSuccess":0,"compareAndSwapFail":0,"compareAndDeleteSuccess":0,"compareAndDeleteFail":0,"expireCount":0,"watchers":0}"#, false, r#"json"#),
    // Roles: create (null, empty and request-only fields kept as given), grant, revoke,
    // refusals; a deleted role disappears from user listings but fails a user's GET.
    (r#"PUT /v2/auth/roles/r1"#, r#""#, Some(r#"{"role":"r1"}"#), 201, r#"{"role":"r1","permissions":{"kv":{"read":null,"write":null}}}"#, true, r#"json cluster"#),
    (r#"PUT /v2/auth/roles/r2"#, r#""#, Some(r#"{"role":"r2","permissions":{"kv":{"read":["/foo/*","/a"],"write":[]}}}"#), 201, r#"{"role":"r2","permissions":{"kv":{"read":["/foo/*","/a"],"write":[]}}}"#, true, r#"json cluster"#),
    (r#"PUT /v2/auth/roles/r3"#, r#""#, Some(r#"{"role":"r3","grant":{"kv":{"read":[]}}}"#), 201, r#"{"role":"r3","permissions":{"kv":{"read":null,"write":null}},"grant":{"kv":{"read":[],"write":null}}}"#, true, r#"json cluster"#),
    (r#"GET /v2/auth/roles"#, r#""#, None, 200, r#"{"roles":[{"role":"r1","permissions":{"kv":{"read":null,"write":null}}},{"role":"r2","permissions":{"kv":{"read":["/foo/*","/a"],"write":[]}}},{"role":"r3","permissions":{"kv":{"read":null,"write":null}},"grant":{"kv":{"read":[],"write":null}}},{"role":"root","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}]}"#, true, r#"json cluster"#),
    (r#"PUT /v2/auth/roles/r1"#, r#""#, Some(r#"{"role":"r1","grant":{"kv":{"read":["/x","/b","/a"],"write":["/w*"]}}}"#), 200, r#"{"role":"r1","permissions":{"kv":{"read":["/a","/b","/x"],"write":["/w*"]}}}"#, true, r#"json cluster"#),
    (r#"PUT /v2/auth/roles/r1"#, r#""#, Some(r#"{"role":"r1","revoke":{"kv":{"read":["/zz","/b"]}}}"#), 200, r#"{"role":"r1","permissions":{"kv":{"read":["/a","/x"],"write":["/w*"]}}}"#, true, r#"json cluster"#),
    (r#"PUT /v2/auth/roles/r1"#, r#""#, Some(r#"{"role":"r1","grant":{"kv":{"read":["/x"]}}}"#), 409, r#"{"message":"auth: Granting duplicate read permission /x"}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/roles/r1"#, r#""#, Some(r#"{"role":"r1","grant":{"kv":{"write":["/w*"]}}}"#), 409, r#"{"message":"auth: Granting duplicate write permission /w*"}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/roles/r1"#, r#""#, Some(r#"{"role":"r1","revoke":{"kv":{"read":["/nothere"]}}}"#), 400, r#"{"message":"auth: Role not updated. Use grant/revoke to update the role."}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/roles/r1"#, r#""#, Some(r#"{"role":"r1","permissions":{"kv":{"read":["/q"]}},"grant":{"kv":{"read":["/y"]}}}"#), 400, r#"{"message":"Role JSON contains both permissions and grant/revoke"}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/roles/ghost2"#, r#""#, Some(r#"{"role":"ghost2","grant":{"kv":{"read":["/y"]}}}"#), 404, r#"{"message":"auth: Role ghost2 does not exist."}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/roles/root"#, r#""#, Some(r#"{"role":"root","grant":{"kv":{"read":["/y"]}}}"#), 403, r#"{"message":"auth: Cannot modify role root: is root role."}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/roles/root"#, r#""#, Some(r#"{"role":"root"}"#), 403, r#"{"message":"auth: Cannot modify role root: is root role."}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/roles/r1"#, r#""#, Some(r#"{"role":"r1"}"#), 409, r#"{"message":"auth: Role r1 already exists."}"#, false, r#"json cluster"#),
    (r#"DELETE /v2/auth/roles/root"#, r#""#, None, 403, r#"{"message":"auth: Cannot modify role root: is root role."}"#, false, r#"json cluster"#),
    (r#"DELETE /v2/auth/roles/nope"#, r#""#, None, 404, r#"{"message":"auth: Role nope doesn't exist."}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/roles/r9"#, r#""#, Some(r#"{"role":"r8"}"#), 400, r#"{"message":"Role JSON name does not match the name in the URL"}"#, false, r#"json cluster"#),
    (r#"GET /v2/auth/users/bob"#, r#""#, None, 200, r#"{"user":"bob","roles":[{"role":"r1","permissions":{"kv":{"read":["/a","/x"],"write":["/w*"]}}},{"role":"r1","permissions":{"kv":{"read":["/a","/x"],"write":["/w*"]}}}]}"#, true, r#"json cluster"#),
    (r#"GET /v2/auth/users/alice"#, r#""#, None, 404, r#"{"message":"auth: Role ghost does not exist."}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/users/alice"#, r#""#, Some(r#"{"user":"alice","revoke":["ghost"]}"#), 200, r#"{"user":"alice","roles":["r1"]}"#, true, r#"json cluster"#),
    (r#"GET /v2/auth/users/alice"#, r#""#, None, 200, r#"{"user":"alice","roles":[{"role":"r1","permissions":{"kv":{"read":["/a","/x"],"write":["/w*"]}}}]}"#, true, r#"json cluster"#),
    (r#"DELETE /v2/auth/roles/r2"#, r#""#, None, 200, r#""#, false, r#"json cluster"#),
    (r#"GET /v2/auth/users"#, r#""#, None, 200, r#"{"users":[{"user":"alice","roles":[{"role":"r1","permissions":{"kv":{"read":["/a","/x"],"write":["/w*"]}}}]},{"user":"bob","roles":[{"role":"r1","permissions":{"kv":{"read":["/a","/x"],"write":["/w*"]}}},{"role":"r1","permissions":{"kv":{"read":["/a","/x"],"write":["/w*"]}}}]},{"user":"root","roles":[{"role":"root","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}]}]}"#, true, r#"json cluster"#),
    (r#"GET /v2/keys/"#, r#""#, None, 200, r#"{"action":"get","node":{"dir":true}}"#, true, r#"json cluster index=20"#),
    (r#"GET /v2/stats/store"#, r#""#, None, 200, r#"{"getsSuccess":84,"getsFail":29,"setsSuccess":2,"setsFail":0,"deleteSuccess":1,"deleteFail":2,"updateSuccess":6,"updateFail":0,"createSuccess":11,"createFail":2,"compareAndSwapSuccess":0,"compareAndSwapFail":0,"compareAndDeleteSuccess":0,"compareAndDeleteFail":0,"expireCount":0,"watchers":0}"#, false, r#"json"#),
    // Enabled: root access for /v2/auth and membership changes, the guest role for requests
    // without credentials, each user's roles on /v2/keys (recursive needs a `*` pattern),
    // basic auth as Go parses it, a password change, and off again.
    (r#"PUT /v2/auth/enable"#, r#""#, None, 200, r#""#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/enable"#, r#""#, None, 401, r#"{"message":"Insufficient credentials"}"#, false, r#"json"#),
    (r#"PUT /v2/auth/enable"#, r#"root:rootpw"#, None, 409, r#"{"message":"auth: already enabled"}"#, false, r#"json cluster"#),
    (r#"GET /v2/auth/enable"#, r#""#, None, 200, r#"{"enabled":true}"#, true, r#"json cluster"#),
    (r#"GET /v2/auth/roles"#, r#""#, None, 401, r#"{"message":"Insufficient credentials"}"#, false, r#"json"#),
    (r#"GET /v2/auth/roles/guest"#, r#"root:rootpw"#, None, 200, r#"{"role":"guest","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}"#, true, r#"json cluster"#),
    (r#"GET /v2/auth/users"#, r#"alice:alicepw"#, None, 401, r#"{"message":"Insufficient credentials"}"#, false, r#"json"#),
    (r#"DELETE /v2/auth/users/root"#, r#"root:rootpw"#, None, 403, r#"{"message":"auth: Cannot delete root user while auth is enabled."}"#, false, r#"json cluster"#),
    (r#"GET /v2/keys/foo"#, r#""#, None, 404, r#"{"errorCode":100,"message":"Key not found","cause":"/foo","index":22}"#, true, r#"json cluster index=22"#),
    (r#"PUT /v2/keys/foo"#, r#""#, Some(r#"form:value=1"#), 201, r#"{"action":"set","node":{"key":"/foo","value":"1","modifiedIndex":23,"createdIndex":23}}"#, true, r#"json cluster index=23"#),
    (r#"GET /v2/keys/foo"#, r#"root:bad"#, None, 401, r#"{"errorCode":110,"message":"The request requires user authentication","cause":"Insufficient credentials","index":0}"#, true, r#"json cluster index=0"#),
    (r#"GET /v2/keys/foo"#, r#"nobody:x"#, None, 401, r#"{"errorCode":110,"message":"The request requires user authentication","cause":"Insufficient credentials","index":0}"#, true, r#"json cluster index=0"#),
    (r#"GET /v2/keys/foo"#, r#"raw:Bearer x"#, None, 401, r#"{"errorCode":110,"message":"The request requires user authentication","cause":"Insufficient credentials","index":0}"#, true, r#"json cluster index=0"#),
    (r#"GET /v2/keys/foo"#, r#"raw:basic cm9vdDpyb290cHc="#, None, 200, r#"{"action":"get","node":{"key":"/foo","value":"1","modifiedIndex":23,"createdIndex":23}}"#, true, r#"json cluster index=23"#),
    (r#"GET /v2/keys/foo"#, r#"raw:Basic cm9vdDpyb290cHc"#, None, 401, r#"{"errorCode":110,"message":"The request requires user authentication","cause":"Insufficient credentials","index":0}"#, true, r#"json cluster index=0"#),
    (r#"PUT /v2/auth/roles/guest"#, r#"root:rootpw"#, Some(r#"{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}"#), 200, r#"{"role":"guest","permissions":{"kv":{"read":[],"write":[]}}}"#, true, r#"json cluster"#),
    (r#"PUT /v2/auth/roles/guest"#, r#"root:rootpw"#, Some(r#"{"role":"guest","grant":{"kv":{"read":["/pub/*","/one"],"write":["/pub/w"]}}}"#), 200, r#"{"role":"guest","permissions":{"kv":{"read":["/one","/pub/*"],"write":["/pub/w"]}}}"#, true, r#"json cluster"#),
    (r#"GET /v2/keys/foo"#, r#""#, None, 401, r#"{"errorCode":110,"message":"The request requires user authentication","cause":"Insufficient credentials","index":0}"#, true, r#"json cluster index=0"#),
    (r#"GET /v2/keys/one"#, r#""#, None, 404, r#"{"errorCode":100,"message":"Key not found","cause":"/one","index":25}"#, true, r#"json cluster index=25"#),
    (r#"GET /v2/keys/pub"#, r#""#, None, 401, r#"{"errorCode":110,"message":"The request requires user authentication","cause":"Insufficient credentials","index":0}"#, true, r#"json cluster index=0"#),
    (r#"GET /v2/keys/pub/"#, r#""#, None, 404, r#"{"errorCode":100,"message":"Key not found","cause":"/pub","index":25}"#, true, r#"json cluster index=25"#),
    (r#"GET /v2/keys/pub/?recursive=true"#, r#""#, None, 404, r#"{"errorCode":100,"message":"Key not found","cause":"/pub","index":25}"#, true, r#"json cluster index=25"#),
    (r#"PUT /v2/keys/pub/w"#, r#""#, Some(r#"form:value=1"#), 201, r#"{"action":"set","node":{"key":"/pub/w","value":"1","modifiedIndex":26,"createdIndex":26}}"#, true, r#"json cluster index=26"#),
    (r#"PUT /v2/keys/pub/w2"#, r#""#, Some(r#"form:value=1"#), 401, r#"{"errorCode":110,"message":"The request requires user authentication","cause":"Insufficient credentials","index":0}"#, true, r#"json cluster index=0"#),
    (r#"GET /v2/keys"#, r#""#, None, 401, r#"{"errorCode":110,"message":"The request requires user authentication","cause":"Insufficient credentials","index":0}"#, true, r#"json cluster index=0"#),
    (r#"GET /v2/keys/pub/w?wait=true&waitIndex=1"#, r#""#, None, 200, r#"{"action":"set","node":{"key":"/pub/w","value":"1","modifiedIndex":26,"createdIndex":26}}"#, true, r#"json cluster index=26"#),
    (r#"GET /v2/keys/a"#, r#"alice:alicepw"#, None, 404, r#"{"errorCode":100,"message":"Key not found","cause":"/a","index":26}"#, true, r#"json cluster index=26"#),
    (r#"GET /v2/keys/a?recursive=true"#, r#"alice:alicepw"#, None, 401, r#"{"errorCode":110,"message":"The request requires user authentication","cause":"Insufficient credentials","index":0}"#, true, r#"json cluster index=0"#),
    (r#"PUT /v2/keys/wx"#, r#"alice:alicepw"#, Some(r#"form:value=1"#), 201, r#"{"action":"set","node":{"key":"/wx","value":"1","modifiedIndex":27,"createdIndex":27}}"#, true, r#"json cluster index=27"#),
    (r#"PUT /v2/keys/w/deep"#, r#"alice:alicepw"#, Some(r#"form:value=1"#), 201, r#"{"action":"set","node":{"key":"/w/deep","value":"1","modifiedIndex":28,"createdIndex":28}}"#, true, r#"json cluster index=28"#),
    (r#"GET /v2/keys/w?recursive=true"#, r#"alice:alicepw"#, None, 401, r#"{"errorCode":110,"message":"The request requires user authentication","cause":"Insufficient credentials","index":0}"#, true, r#"json cluster index=0"#),
    (r#"GET /v2/keys/foo"#, r#"alice:alicepw"#, None, 401, r#"{"errorCode":110,"message":"The request requires user authentication","cause":"Insufficient credentials","index":0}"#, true, r#"json cluster index=0"#),
    (r#"DELETE /v2/keys/w?recursive=true"#, r#"alice:alicepw"#, None, 200, r#"{"action":"delete","node":{"key":"/w","dir":true,"modifiedIndex":29,"createdIndex":28},"prevNode":{"key":"/w","dir":true,"modifiedIndex":28,"createdIndex":28}}"#, true, r#"json cluster index=29"#),
    (r#"PUT /v2/keys/x?recursive=true"#, r#"alice:alicepw"#, Some(r#"form:value=1"#), 401, r#"{"errorCode":110,"message":"The request requires user authentication","cause":"Insufficient credentials","index":0}"#, true, r#"json cluster index=0"#),
    (r#"GET /v2/keys/foo"#, r#"bob:bobpw"#, None, 401, r#"{"errorCode":110,"message":"The request requires user authentication","cause":"Insufficient credentials","index":0}"#, true, r#"json cluster index=0"#),
    (r#"GET /v2/members"#, r#"root:bad"#, None, 200, r#"{"members":[{"id":"2e1259d415f2a040","name":"n1","peerURLs":["http://127.0.0.1:23800"],"clientURLs":["http://127.0.0.1:23790"]}]}"#, true, r#"json cluster"#),
    (r#"POST /v2/members"#, r#"root:bad"#, Some(r#"{"peerURLs":["http://127.0.0.1:1"]}"#), 401, r#"{"message":"Insufficient credentials"}"#, false, r#"json"#),
    (r#"DELETE /v2/members/abc"#, r#"alice:alicepw"#, None, 401, r#"{"message":"Insufficient credentials"}"#, false, r#"json"#),
    (r#"POST /v2/members"#, r#"root:rootpw"#, Some(r#"form:x"#), 415, r#"{"message":"Bad Content-Type application/x-www-form-urlencoded, accept application/json"}"#, false, r#"json cluster"#),
    (r#"GET /v2/stats/store"#, r#"root:bad"#, None, 200, r#"{"getsSuccess":173,"getsFail":36,"setsSuccess":6,"setsFail":0,"deleteSuccess":2,"deleteFail":2,"updateSuccess":9,"updateFail":0,"createSuccess":12,"createFail":2,"compareAndSwapSuccess":0,"compareAndSwapFail":0,"compareAndDeleteSuccess":0,"compareAndDeleteFail":0,"expireCount":0,"watchers":0}"#, false, r#"json"#),
    (r#"PUT /v2/auth/users/root"#, r#"root:rootpw"#, Some(r#"{"user":"root","password":"newpw"}"#), 200, r#"{"user":"root","roles":["root"]}"#, true, r#"json cluster"#),
    (r#"GET /v2/keys/foo"#, r#"root:rootpw"#, None, 401, r#"{"errorCode":110,"message":"The request requires user authentication","cause":"Insufficient credentials","index":0}"#, true, r#"json cluster index=0"#),
    (r#"GET /v2/keys/foo"#, r#"root:newpw"#, None, 200, r#"{"action":"get","node":{"key":"/foo","value":"1","modifiedIndex":23,"createdIndex":23}}"#, true, r#"json cluster index=30"#),
    (r#"DELETE /v2/auth/enable"#, r#"alice:alicepw"#, None, 401, r#"{"message":"Insufficient credentials"}"#, false, r#"json"#),
    (r#"DELETE /v2/auth/enable"#, r#"root:newpw"#, None, 200, r#""#, false, r#"json cluster"#),
    (r#"DELETE /v2/auth/enable"#, r#"root:newpw"#, None, 409, r#"{"message":"auth: already disabled"}"#, false, r#"json cluster"#),
    (r#"GET /v2/keys/foo"#, r#""#, None, 200, r#"{"action":"get","node":{"key":"/foo","value":"1","modifiedIndex":23,"createdIndex":23}}"#, true, r#"json cluster index=31"#),
    (r#"GET /v2/keys/?sorted=true"#, r#""#, None, 200, r#"{"action":"get","node":{"dir":true,"nodes":[{"key":"/foo","value":"1","modifiedIndex":23,"createdIndex":23},{"key":"/pub","dir":true,"modifiedIndex":26,"createdIndex":26},{"key":"/wx","value":"1","modifiedIndex":27,"createdIndex":27}]}}"#, true, r#"json cluster index=31"#),
    (r#"GET /v2/stats/store"#, r#""#, None, 200, r#"{"getsSuccess":195,"getsFail":36,"setsSuccess":6,"setsFail":0,"deleteSuccess":2,"deleteFail":2,"updateSuccess":11,"updateFail":0,"createSuccess":12,"createFail":2,"compareAndSwapSuccess":0,"compareAndSwapFail":0,"compareAndDeleteSuccess":0,"compareAndDeleteFail":0,"expireCount":0,"watchers":0}"#, false, r#"json"#),
    // Bad input, with auth off: JSON as Go's decoder reads it, paths, methods, queries.
    (r#"PUT /v2/auth/users/x"#, r#""#, Some(r#""#), 400, r#"{"message":"Invalid JSON in request body."}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/users/x"#, r#""#, Some(r#"{"user":"#), 400, r#"{"message":"Invalid JSON in request body."}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/users/x"#, r#""#, Some(r#"null"#), 400, r#"{"message":"User JSON name does not match the name in the URL"}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/users/x"#, r#""#, Some(r#"{"user":5}"#), 400, r#"{"message":"Invalid JSON in request body."}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/users/x"#, r#""#, Some(r#"{"user":"x","password":"p"} trailing {"#), 201, r#"{"user":"x","roles":null}"#, true, r#"json cluster"#),
    (r#"PUT /v2/auth/roles/rq"#, r#""#, Some(r#"[]"#), 400, r#"{"message":"Invalid JSON in request body."}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/roles/rq"#, r#""#, Some(r#"{"role":"rq","permissions":{"kv":{"read":"/a"}}}"#), 400, r#"{"message":"Invalid JSON in request body."}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/roles/rq"#, r#""#, Some(r#"{"role":"rq","permissions":null,"grant":null,"revoke":{}}"#), 201, r#"{"role":"rq","permissions":{"kv":{"read":null,"write":null}},"revoke":{"kv":{"read":null,"write":null}}}"#, true, r#"json cluster"#),
    (r#"GET /v2/auth/users/x/y"#, r#""#, None, 400, r#"{"message":"Invalid path"}"#, false, r#"json"#),
    (r#"GET /v2/auth/roles/a/b"#, r#""#, None, 400, r#"{"message":"Invalid path"}"#, false, r#"json"#),
    (r#"POST /v2/auth/users"#, r#""#, None, 405, r#"Method Not Allowed"#, true, r#"text allow=GET"#),
    (r#"POST /v2/auth/users/x"#, r#""#, None, 405, r#"Method Not Allowed"#, true, r#"text allow=GET,PUT,DELETE"#),
    (r#"POST /v2/auth/enable"#, r#""#, None, 405, r#"Method Not Allowed"#, true, r#"text allow=GET,PUT,DELETE"#),
    (r#"HEAD /v2/auth/enable"#, r#""#, None, 405, r#""#, false, r#"text allow=GET,PUT,DELETE"#),
    (r#"POST /v2/auth/roles"#, r#""#, None, 405, r#"Method Not Allowed"#, true, r#"text allow=GET"#),
    (r#"PATCH /v2/auth/roles/x"#, r#""#, None, 405, r#"Method Not Allowed"#, true, r#"text allow=GET,PUT,DELETE"#),
    (r#"GET /v2/auth/roles?a=%zz"#, r#""#, None, 500, r#"{"message":"Internal Server Error"}"#, false, r#"json cluster"#),
    (r#"GET /v2/auth/users?a=%zz"#, r#""#, None, 500, r#"{"message":"Internal Server Error"}"#, false, r#"json cluster"#),
    (r#"GET /v2/auth/users/x?a=%zz"#, r#""#, None, 500, r#"{"message":"Internal Server Error"}"#, false, r#"json cluster"#),
    (r#"GET /v2/auth/users/nobody?a=%zz"#, r#""#, None, 404, r#"{"message":"auth: User nobody does not exist."}"#, false, r#"json cluster"#),
    (r#"PUT /v2/auth/users/dave"#, r#""#, Some(r#"{"USER":"dave","Password":"x","ROLEſ":["r1"]}"#), 200, r#"{"user":"dave","roles":["r1"]}"#, true, r#"json cluster"#),
    (r#"PUT /v2/auth/users/gina"#, r#""#, Some(r#"{"user":"gina","password":"p","roles":["a","b"],"roles":[null]}"#), 200, r#"{"user":"gina","roles":["a"]}"#, true, r#"json cluster"#),
    (r#"PUT /v2/auth/users/ivy"#, r#""#, Some(r#"{"user":"ivy","password":"p\ud800x","roles":["<&>\u2028"]}"#), 200, r#"{"user":"ivy","roles":["\u003c\u0026\u003e\u2028"]}"#, true, r#"json cluster"#),
    (r#"PUT /v2/auth/roles/ws"#, r#""#, Some(r#"{"role":"ws","permissions":{"kv":{"read":["a"]}},"permissions":{"kv":{"write":["b"]}}}"#), 201, r#"{"role":"ws","permissions":{"kv":{"read":["a"],"write":["b"]}}}"#, true, r#"json cluster"#),
    (r#"GET /v2/auth/users/"#, r#""#, None, 200, r#"{"users":[{"user":"alice","roles":[{"role":"r1","permissions":{"kv":{"read":["/a","/x"],"write":["/w*"]}}}]},{"user":"bob","roles":[{"role":"r1","permissions":{"kv":{"read":["/a","/x"],"write":["/w*"]}}},{"role":"r1","permissions":{"kv":{"read":["/a","/x"],"write":["/w*"]}}}]},{"user":"dave","roles":[{"role":"r1","permissions":{"kv":{"read":["/a","/x"],"write":["/w*"]}}}]},{"user":"gina"},{"user":"ivy"},{"user":"root","roles":[{"role":"root","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}]},{"user":"x"}]}"#, true, r#"json cluster"#),
    (r#"GET /v2/auth/roles/"#, r#""#, None, 200, r#"{"roles":[{"role":"guest","permissions":{"kv":{"read":["/one","/pub/*"],"write":["/pub/w"]}}},{"role":"r1","permissions":{"kv":{"read":["/a","/x"],"write":["/w*"]}}},{"role":"r3","permissions":{"kv":{"read":null,"write":null}},"grant":{"kv":{"read":[],"write":null}}},{"role":"root","permissions":{"kv":{"read":["/*"],"write":["/*"]}}},{"role":"rq","permissions":{"kv":{"read":null,"write":null}},"revoke":{"kv":{"read":null,"write":null}}},{"role":"ws","permissions":{"kv":{"read":["a"],"write":["b"]}}}]}"#, true, r#"json cluster"#),
    (r#"GET /v2/auth/users/./x"#, r#""#, None, 301, "<a href=\"/v2/auth/users/x\">Moved Permanently</a>.\n", true, r#"html location=/v2/auth/users/x"#),
    (r#"PUT /v2/auth/users/"#, r#""#, Some(r#"{"user":""}"#), 405, r#"Method Not Allowed"#, true, r#"text allow=GET"#),
    (r#"GET /v2/keys/?sorted=true"#, r#""#, None, 200, r#"{"action":"get","node":{"dir":true,"nodes":[{"key":"/foo","value":"1","modifiedIndex":23,"createdIndex":23},{"key":"/pub","dir":true,"modifiedIndex":26,"createdIndex":26},{"key":"/wx","value":"1","modifiedIndex":27,"createdIndex":27}]}}"#, true, r#"json cluster index=37"#),
    (r#"GET /v2/stats/store"#, r#""#, None, 200, r#"{"getsSuccess":236,"getsFail":40,"setsSuccess":6,"setsFail":0,"deleteSuccess":2,"deleteFail":2,"updateSuccess":11,"updateFail":0,"createSuccess":18,"createFail":2,"compareAndSwapSuccess":0,"compareAndSwapFail":0,"compareAndDeleteSuccess":0,"compareAndDeleteFail":0,"expireCount":0,"watchers":0}"#, false, r#"json"#),
];

struct Api {
    app: Router,
    backend: Arc<LocalBackend>,
}

struct Resp {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The headers as the table writes them.
    fn shape(&self) -> String {
        let mut out = vec![match self.header("content-type") {
            Some("application/json") => "json".to_string(),
            Some("text/plain; charset=utf-8") => "text".to_string(),
            Some("text/html; charset=utf-8") => "html".to_string(),
            None => "-".to_string(),
            Some(other) => other.to_string(),
        }];
        if self.header("x-etcd-cluster-id").is_some() {
            out.push("cluster".into());
        }
        for (name, tag) in [
            ("x-etcd-index", "index"),
            ("allow", "allow"),
            ("location", "location"),
        ] {
            if let Some(v) = self.header(name) {
                out.push(format!("{tag}={v}"));
            }
        }
        out.join(" ")
    }
}

/// `/v2/stats/store` with updates and compare-and-swaps added up (see the module doc).
fn fold_updates(stats: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(stats).unwrap();
    for (update, cas) in [
        ("updateSuccess", "compareAndSwapSuccess"),
        ("updateFail", "compareAndSwapFail"),
    ] {
        let sum = v[update].as_u64().unwrap() + v[cas].as_u64().unwrap();
        v[update] = sum.into();
        v[cas] = 0.into();
    }
    v
}

fn basic(user: &str) -> String {
    use std::fmt::Write;
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::from("Basic ");
    for chunk in user.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                let _ = out.write_char('=');
            }
        }
    }
    out
}

impl Api {
    fn new() -> Api {
        let backend = Arc::new(LocalBackend::new(
            0x48276a8f75b6a87,
            MemberInfo {
                id: 0x2e1259d415f2a040,
                name: "n1".into(),
                peer_urls: vec!["http://127.0.0.1:23800".into()],
                client_urls: vec!["http://127.0.0.1:23790".into()],
            },
        ));
        backend.bootstrap_like_etcd();
        Api {
            app: router_with(backend.clone(), Passwords::new(4), None),
            backend,
        }
    }

    fn request(target: &str, user: &str, body: Option<&str>) -> Request<Body> {
        let (method, uri) = target.split_once(' ').unwrap();
        let mut b = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri);
        if let Some(raw) = user.strip_prefix("raw:") {
            b = b.header("authorization", raw);
        } else if !user.is_empty() {
            b = b.header("authorization", basic(user));
        }
        match body {
            Some(form) if form.starts_with("form:") => b
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(form["form:".len()..].to_string())),
            Some(json) => b
                .header("content-type", "application/json")
                .body(Body::from(json.to_string())),
            None => b.body(Body::empty()),
        }
        .unwrap()
    }

    async fn send(&self, req: Request<Body>) -> Resp {
        let r = self.app.clone().oneshot(req).await.unwrap();
        let (parts, body) = r.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        Resp {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    async fn call(&self, target: &str, user: &str, body: Option<&str>) -> Resp {
        self.send(Self::request(target, user, body)).await
    }

    /// Runs `steps` in order and checks each answer.
    async fn run(&self, steps: &[Step]) {
        for (i, &(target, user, body, status, want, newline, shape)) in steps.iter().enumerate() {
            let r = self.call(target, user, body).await;
            let label = format!("step {i}: {target} as {user:?}");
            assert_eq!(r.status.as_u16(), status, "{label}: {}", r.body);
            assert_eq!(r.shape(), shape, "{label}: headers");
            assert_eq!(
                r.header("www-authenticate"),
                None,
                "{label}: etcd sends none"
            );
            if target.starts_with("HEAD ") {
                continue;
            }
            let want = if newline {
                format!("{want}\n")
            } else {
                want.to_string()
            };
            if target.contains("/v2/stats/store") {
                assert_eq!(fold_updates(&r.body), fold_updates(&want), "{label}");
            } else {
                assert_eq!(r.body, want, "{label}");
            }
        }
    }
}

#[tokio::test]
async fn answers_as_etcd_does() {
    Api::new().run(ETCD).await;
}

const JSON: &str = "json cluster";
const ROOT: &str = "root:rootpw";

impl Api {
    /// Root, alice (role `reader`: read `/pub/*`) and bob (no role), auth on.
    async fn with_users() -> Api {
        let api = Api::new();
        api.run(&[
            (
                "PUT /v2/auth/users/root",
                "",
                Some(r#"{"user":"root","password":"rootpw"}"#),
                201,
                r#"{"user":"root","roles":["root"]}"#,
                true,
                JSON,
            ),
            (
                "PUT /v2/auth/roles/reader",
                "",
                Some(r#"{"role":"reader","permissions":{"kv":{"read":["/pub/*"],"write":[]}}}"#),
                201,
                r#"{"role":"reader","permissions":{"kv":{"read":["/pub/*"],"write":[]}}}"#,
                true,
                JSON,
            ),
            (
                "PUT /v2/auth/users/alice",
                "",
                Some(r#"{"user":"alice","password":"alicepw","roles":["reader"]}"#),
                200,
                r#"{"user":"alice","roles":["reader"]}"#,
                true,
                JSON,
            ),
            (
                "PUT /v2/auth/users/bob",
                "",
                Some(r#"{"user":"bob","password":"bobpw"}"#),
                201,
                r#"{"user":"bob","roles":null}"#,
                true,
                JSON,
            ),
            ("PUT /v2/auth/enable", "", None, 200, "", false, JSON),
            (
                "PUT /v2/auth/roles/guest",
                ROOT,
                Some(r#"{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}"#),
                200,
                r#"{"role":"guest","permissions":{"kv":{"read":[],"write":[]}}}"#,
                true,
                JSON,
            ),
        ])
        .await;
        api
    }

    async fn stats(&self) -> serde_json::Value {
        let r = self.call("GET /v2/stats/store", "", None).await;
        serde_json::from_str(&r.body).unwrap()
    }
}

const REFUSED: &str = r#"{"errorCode":110,"message":"The request requires user authentication","cause":"Insufficient credentials","index":0}"#;

/// etcd 3.4 hashes only the first 72 bytes of a password, so a longer one is accepted and
/// any password with the same 72 bytes logs in; chorus refuses to set it, and a longer
/// password presented never matches.
#[tokio::test]
async fn passwords_bcrypt_would_cut_are_refused() {
    let api = Api::with_users().await;
    let long = "p".repeat(73);
    let body = format!(r#"{{"user":"carol","password":"{long}","roles":["root"]}}"#);
    let r = api
        .call("PUT /v2/auth/users/carol", ROOT, Some(&body))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        r#"{"message":"auth: Password of user carol is longer than 72 bytes"}"#
    );
    let body = format!(
        r#"{{"user":"carol","password":"{}","roles":["root"]}}"#,
        &long[..72]
    );
    let r = api
        .call("PUT /v2/auth/users/carol", ROOT, Some(&body))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ok = api
        .call(
            "GET /v2/auth/enable",
            &format!("carol:{}", &long[..72]),
            None,
        )
        .await;
    assert_eq!(ok.status, 200);
    let r = api
        .call("GET /v2/keys/x", &format!("carol:{long}"), None)
        .await;
    assert_eq!((r.status.as_u16(), r.body.trim_end()), (401, REFUSED));
    let r = api
        .call("GET /v2/keys/x", &format!("carol:{}", &long[..72]), None)
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
}

/// etcd reads a request body of any size; chorus stops at 10 MiB (the largest v2 form) and
/// changes nothing.
#[tokio::test]
async fn over_long_bodies_are_refused() {
    let api = Api::new();
    let pattern = format!("\"/{}\",", "k".repeat(1000));
    let big = format!(
        r#"{{"role":"big","permissions":{{"kv":{{"read":[{}"/x"],"write":[]}}}}}}"#,
        pattern.repeat(11 * 1024)
    );
    let r = api.call("PUT /v2/auth/roles/big", "", Some(&big)).await;
    assert_eq!(
        (r.status.as_u16(), r.body.as_str()),
        (413, r#"{"message":"http: request body too large"}"#)
    );
    let r = api.call("GET /v2/auth/roles/big", "", None).await;
    assert_eq!(r.status, 404);
    let fits = big.replacen(&pattern.repeat(2 * 1024), "", 1);
    let r = api.call("PUT /v2/auth/roles/big", "", Some(&fits)).await;
    assert_eq!(r.status, 201, "a body under the limit is taken");
}

/// chorus updates users and roles by compare-and-swap on the index it read; etcd 3.4
/// overwrites. The switch is updated as etcd does.
#[tokio::test]
async fn updates_are_compare_and_swaps() {
    let api = Api::with_users().await;
    let before = api.stats().await;
    let r = api
        .call(
            "PUT /v2/auth/users/bob",
            ROOT,
            Some(r#"{"user":"bob","grant":["reader"]}"#),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = api
        .call(
            "PUT /v2/auth/roles/reader",
            ROOT,
            Some(r#"{"role":"reader","grant":{"kv":{"write":["/pub/w"]}}}"#),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = api.call("DELETE /v2/auth/enable", ROOT, None).await;
    assert_eq!(r.status, 200);
    let after = api.stats().await;
    let delta = |k: &str| after[k].as_u64().unwrap() - before[k].as_u64().unwrap();
    assert_eq!(delta("compareAndSwapSuccess"), 2);
    assert_eq!(delta("updateSuccess"), 1, "the switch");
}

/// With `--client-cert-auth`, a request without `Authorization` is the user its verified
/// certificate names; an `Authorization` header wins over the certificate.
#[tokio::test]
async fn client_certificates_name_users() {
    let api = Api::with_users().await;
    let as_cert = |target: &str, cn: &str, user: &str| {
        let mut req = Api::request(target, user, None);
        req.extensions_mut().insert(ClientIdentity(cn.into()));
        req
    };
    assert_eq!(
        api.send(as_cert("GET /v2/auth/users", "root", ""))
            .await
            .status,
        200
    );
    assert_eq!(
        api.send(as_cert("GET /v2/auth/users", "alice", ""))
            .await
            .status,
        401
    );
    assert_eq!(
        api.send(as_cert("GET /v2/auth/users", "root", "bob:bobpw"))
            .await
            .status,
        401
    );
    assert_eq!(
        api.send(as_cert("GET /v2/keys/pub/x", "alice", ""))
            .await
            .status,
        404
    );
    assert_eq!(
        api.send(as_cert("GET /v2/keys/other", "alice", ""))
            .await
            .status,
        401
    );
    // Not a user: the guest role, which has nothing left.
    assert_eq!(
        api.send(as_cert("GET /v2/keys/pub/x", "nobody", ""))
            .await
            .status,
        401
    );
}

/// etcd 3.4 indexes the last byte of every pattern and drops the connection on an empty
/// one (a Go panic); chorus lets an empty pattern match nothing.
#[tokio::test]
async fn empty_patterns_match_nothing() {
    let api = Api::with_users().await;
    let r = api
        .call(
            "PUT /v2/auth/roles/guest",
            ROOT,
            Some(r#"{"role":"guest","grant":{"kv":{"read":["","/open"]}}}"#),
        )
        .await;
    assert_eq!(
        r.body,
        "{\"role\":\"guest\",\"permissions\":{\"kv\":{\"read\":[\"\",\"/open\"],\"write\":[]}}}\n"
    );
    assert_eq!(api.call("GET /v2/keys/zzz", "", None).await.status, 401);
    assert_eq!(api.call("GET /v2/keys/open", "", None).await.status, 404);
}

/// Users, roles and the switch are v2 store data: a snapshot of the store carries them.
#[tokio::test]
async fn auth_travels_in_store_snapshots() {
    let api = Api::with_users().await;
    let blob = api.backend.store().read().save();
    let other = Api::new();
    other.backend.store().write().recover(&blob).unwrap();
    let r = other.call("GET /v2/auth/enable", "", None).await;
    assert_eq!(r.body, "{\"enabled\":true}\n");
    assert_eq!(
        other
            .call("GET /v2/keys/pub/x", "alice:alicepw", None)
            .await
            .status,
        404
    );
    assert_eq!(
        other
            .call("GET /v2/keys/pub/x", "alice:wrong", None)
            .await
            .status,
        401
    );
    assert_eq!(
        other.call("GET /v2/auth/users", ROOT, None).await.status,
        200
    );
}

/// The records are out of reach of `/v2/keys`, as in etcd: its keys live under `/1`.
#[tokio::test]
async fn records_are_hidden_from_keys() {
    let api = Api::with_users().await;
    for target in [
        "GET /v2/keys/2/users/root",
        "GET /v2/keys/../2/enabled",
        "GET /v2/keys/?recursive=true",
    ] {
        let r = api.call(target, ROOT, None).await;
        assert!(
            !r.body.contains("$2a$") && !r.body.contains("/users/"),
            "{target}: {}",
            r.body
        );
    }
}

/// As in etcd, statistics and the machine list need no credentials, nor does reading the
/// members; changing them needs root.
#[tokio::test]
async fn stats_machines_and_member_reads_stay_open() {
    let api = Api::with_users().await;
    for target in [
        "GET /v2/stats/store",
        "GET /v2/stats/self",
        "GET /v2/stats/leader",
        "GET /v2/machines",
        "GET /v2/members",
        "GET /v2/members/leader",
    ] {
        for user in ["", "root:wrong", "bob:bobpw"] {
            assert_eq!(
                api.call(target, user, None).await.status,
                200,
                "{target} as {user:?}"
            );
        }
    }
    let r = api.call("DELETE /v2/members/abc", "bob:bobpw", None).await;
    assert_eq!(
        (r.status.as_u16(), r.body.as_str()),
        (401, r#"{"message":"Insufficient credentials"}"#)
    );
    assert_eq!(r.header("x-etcd-cluster-id"), None);
    let r = api.call("DELETE /v2/members/abc", ROOT, None).await;
    assert_eq!(
        (r.status.as_u16(), r.body.as_str()),
        (404, r#"{"message":"No such member: abc"}"#)
    );
}
