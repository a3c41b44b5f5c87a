//! `/v2/auth`: etcd 3.4's v2 auth handlers (`v2http/client_auth.go`) over the
//! [`AuthStore`]: `/v2/auth/enable` (GET status; PUT, DELETE switch), `/v2/auth/users`,
//! `/v2/auth/users/<name>`, `/v2/auth/roles`, `/v2/auth/roles/<name>` (GET; PUT creates,
//! or grants and revokes; DELETE), with etcd's JSON, statuses, headers and error bodies
//! (`{"message":..}`, no newline; success bodies end with one).
//!
//! Every route needs root access while auth is on, except reading the switch. A refusal
//! (`401 {"message":"Insufficient credentials"}`) carries no cluster ID, as in etcd, which
//! sets that header only once access is granted.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::access::{has_root_access, has_write_root_access, Credentials};
use super::form::Form;
use super::http::{
    cluster_id, http_error, json_response, key_error, no_auth, request_path, set_header, Backend,
};
use crate::net::reply::method_not_allowed;
use crate::v2::auth::error::is_raft_failure;
use crate::v2::auth::{AuthError, AuthStore, Permissions, Role, User};
use crate::v2::format::clean;

const AUTH_PATH: &str = "/v2/auth";
/// etcd reads a body of any size; chorus stops at the size of the largest v2 form.
pub const MAX_AUTH_BODY: usize = 10 << 20;

type Auth = Arc<AuthStore>;

/// etcd's `writeError` for what the auth store answered.
fn auth_error(e: &AuthError, cluster: &str) -> Response {
    match e {
        AuthError::Store(v) if !is_raft_failure(v) => key_error(v, cluster),
        e if e.status() == StatusCode::INTERNAL_SERVER_ERROR => {
            http_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
        e => http_error(e.status(), &e.to_string()),
    }
}

/// A handler's answer once access is granted: etcd has set the cluster ID (and the JSON
/// content type) by then, whatever follows.
fn granted(mut r: Response, cluster: &str) -> Response {
    set_header(&mut r, "x-etcd-cluster-id", cluster);
    if !r.headers().contains_key("content-type") {
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
    }
    r
}

fn done(r: Result<(), AuthError>, cluster: &str) -> Response {
    match r {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => auth_error(&e, cluster),
    }
}

/// Go's `Request.ParseForm` of a GET: only the query can fail it, which etcd answers with
/// a plain 500.
fn form_error(req_query: Option<&str>) -> Option<Response> {
    Form::default()
        .parse_into(req_query.unwrap_or(""))
        .map(|_| http_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"))
}

async fn read_body(body: Body) -> Result<axum::body::Bytes, Response> {
    axum::body::to_bytes(body, MAX_AUTH_BODY)
        .await
        .map_err(|_| {
            http_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "http: request body too large",
            )
        })
}

fn invalid_json() -> Response {
    http_error(StatusCode::BAD_REQUEST, "Invalid JSON in request body.")
}

// ---- /v2/auth/enable ----

pub(super) async fn enable(
    State(b): State<Backend>,
    State(auth): State<Auth>,
    req: Request,
) -> Response {
    if let Err(r) = request_path(&req) {
        return *r;
    }
    let method = req.method().clone();
    if !matches!(method.as_str(), "GET" | "PUT" | "DELETE") {
        return method_not_allowed("GET,PUT,DELETE");
    }
    let creds = Credentials::from_request(req.headers(), req.extensions());
    if !has_write_root_access(&auth, &creds, &method).await {
        return no_auth();
    }
    let cluster = cluster_id(&b.headers());
    let enabled = auth.auth_enabled().await;
    let r = match method.as_str() {
        "GET" => json_response(StatusCode::OK, format!("{{\"enabled\":{enabled}}}\n")),
        "PUT" => done(auth.enable_auth().await, &cluster),
        _ => done(auth.disable_auth().await, &cluster),
    };
    granted(r, &cluster)
}

// ---- /v2/auth/roles ----

/// `/v2/auth/roles` and everything under it (etcd's `baseRoles` and `handleRoles`).
pub(super) async fn roles(
    State(b): State<Backend>,
    State(auth): State<Auth>,
    req: Request,
) -> Response {
    let path = match request_path(&req) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let sub = clean(&path[AUTH_PATH.len()..]);
    match sub.split('/').collect::<Vec<_>>()[..] {
        [_, _] => base_roles(&b, &auth, req).await,
        [_, _, name] => {
            let name = name.to_string();
            for_role(&b, &auth, req, &name).await
        }
        _ => http_error(StatusCode::BAD_REQUEST, "Invalid path"),
    }
}

async fn base_roles(b: &Backend, auth: &AuthStore, req: Request) -> Response {
    if req.method() != Method::GET {
        return method_not_allowed("GET");
    }
    let creds = Credentials::from_request(req.headers(), req.extensions());
    if !has_root_access(auth, &creds).await {
        return no_auth();
    }
    let cluster = cluster_id(&b.headers());
    let query = req.uri().query().map(str::to_string);
    let r = async {
        let names = auth
            .all_roles()
            .await
            .map_err(|e| auth_error(&e, &cluster))?;
        if let Some(r) = form_error(query.as_deref()) {
            return Err(r);
        }
        let mut roles = Vec::with_capacity(names.len());
        for name in &names {
            roles.push(
                auth.get_role(name)
                    .await
                    .map_err(|e| auth_error(&e, &cluster))?,
            );
        }
        let mut out = String::from("{\"roles\":");
        push_roles(&mut out, &roles, "null");
        out.push_str("}\n");
        Ok(json_response(StatusCode::OK, out))
    };
    granted(r.await.unwrap_or_else(|e| e), &cluster)
}

/// A JSON list of roles; `empty` when there are none (Go: `null` or left out).
fn push_roles(out: &mut String, roles: &[Role], empty: &str) {
    if roles.is_empty() {
        out.push_str(empty);
        return;
    }
    out.push('[');
    for (i, r) in roles.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        r.write_json(out);
    }
    out.push(']');
}

async fn for_role(b: &Backend, auth: &AuthStore, req: Request, name: &str) -> Response {
    let method = req.method().clone();
    if !matches!(method.as_str(), "GET" | "PUT" | "DELETE") {
        return method_not_allowed("GET,PUT,DELETE");
    }
    let creds = Credentials::from_request(req.headers(), req.extensions());
    if !has_root_access(auth, &creds).await {
        return no_auth();
    }
    let cluster = cluster_id(&b.headers());
    let r = match method.as_str() {
        "GET" => match auth.get_role(name).await {
            Ok(role) => json_response(StatusCode::OK, format!("{}\n", role.to_json())),
            Err(e) => auth_error(&e, &cluster),
        },
        "PUT" => put_role(auth, req.into_body(), name, &cluster).await,
        _ => done(auth.delete_role(name).await, &cluster),
    };
    granted(r, &cluster)
}

/// PUT `/v2/auth/roles/<name>`: a create (`permissions`), or a grant and revoke.
async fn put_role(auth: &AuthStore, body: Body, name: &str, cluster: &str) -> Response {
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Ok(role) = Role::from_request(&body) else {
        return invalid_json();
    };
    if role.role != name {
        return http_error(
            StatusCode::BAD_REQUEST,
            "Role JSON name does not match the name in the URL",
        );
    }
    if Permissions::is_empty(role.grant.as_ref()) && Permissions::is_empty(role.revoke.as_ref()) {
        return match auth.create_role(&role).await {
            Ok(()) => json_response(StatusCode::CREATED, format!("{}\n", role.to_json())),
            Err(e) => auth_error(&e, cluster),
        };
    }
    if !Permissions::is_empty(Some(&role.permissions)) {
        return http_error(
            StatusCode::BAD_REQUEST,
            "Role JSON contains both permissions and grant/revoke",
        );
    }
    match auth.update_role(&role).await {
        Ok(out) => json_response(StatusCode::OK, format!("{}\n", out.to_json())),
        Err(e) => auth_error(&e, cluster),
    }
}

// ---- /v2/auth/users ----

/// `/v2/auth/users` and everything under it (etcd's `baseUsers` and `handleUsers`).
pub(super) async fn users(
    State(b): State<Backend>,
    State(auth): State<Auth>,
    req: Request,
) -> Response {
    let path = match request_path(&req) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let sub = clean(&path[AUTH_PATH.len()..]);
    match sub.split('/').collect::<Vec<_>>()[..] {
        [_, _] => base_users(&b, &auth, req).await,
        [_, _, name] => {
            let name = name.to_string();
            for_user(&b, &auth, req, &name).await
        }
        _ => http_error(StatusCode::BAD_REQUEST, "Invalid path"),
    }
}

/// etcd's `userWithRoles`: the user and the roles it has that exist (`omitempty`).
fn push_user_with_roles(out: &mut String, user: &str, roles: &[Role]) {
    out.push_str("{\"user\":");
    crate::v2::format::push_json_str(out, user);
    if !roles.is_empty() {
        out.push_str(",\"roles\":");
        push_roles(out, roles, "");
    }
    out.push('}');
}

async fn base_users(b: &Backend, auth: &AuthStore, req: Request) -> Response {
    if req.method() != Method::GET {
        return method_not_allowed("GET");
    }
    let creds = Credentials::from_request(req.headers(), req.extensions());
    if !has_root_access(auth, &creds).await {
        return no_auth();
    }
    let cluster = cluster_id(&b.headers());
    let query = req.uri().query().map(str::to_string);
    let r = async {
        let fail = |e: AuthError| auth_error(&e, &cluster);
        let names = auth.all_users().await.map_err(fail)?;
        if let Some(r) = form_error(query.as_deref()) {
            return Err(r);
        }
        let mut users = Vec::with_capacity(names.len());
        for name in &names {
            let user = auth.get_user(name).await.map_err(fail)?;
            let mut roles = Vec::new();
            for role in user.roles.iter().flatten() {
                // A role that no longer exists is left out of the list.
                if let Ok(r) = auth.get_role(role).await {
                    roles.push(r);
                }
            }
            let mut one = String::new();
            push_user_with_roles(&mut one, &user.user, &roles);
            users.push(one);
        }
        let list = match users.is_empty() {
            true => "null".to_string(),
            false => format!("[{}]", users.join(",")),
        };
        Ok(json_response(
            StatusCode::OK,
            format!("{{\"users\":{list}}}\n"),
        ))
    };
    granted(r.await.unwrap_or_else(|e| e), &cluster)
}

async fn for_user(b: &Backend, auth: &AuthStore, req: Request, name: &str) -> Response {
    let method = req.method().clone();
    if !matches!(method.as_str(), "GET" | "PUT" | "DELETE") {
        return method_not_allowed("GET,PUT,DELETE");
    }
    let creds = Credentials::from_request(req.headers(), req.extensions());
    if !has_root_access(auth, &creds).await {
        return no_auth();
    }
    let cluster = cluster_id(&b.headers());
    let r = match method.as_str() {
        "GET" => {
            let query = req.uri().query().map(str::to_string);
            get_user(auth, query.as_deref(), name, &cluster).await
        }
        "PUT" => put_user(auth, req.into_body(), name, &cluster).await,
        _ => done(auth.delete_user(name).await, &cluster),
    };
    granted(r, &cluster)
}

/// GET `/v2/auth/users/<name>`: the user with its roles; a role that no longer exists
/// fails the request (etcd: 404 for that role).
async fn get_user(auth: &AuthStore, query: Option<&str>, name: &str, cluster: &str) -> Response {
    let r = async {
        let fail = |e: AuthError| auth_error(&e, cluster);
        let user = auth.get_user(name).await.map_err(fail)?;
        if let Some(r) = form_error(query) {
            return Err(r);
        }
        let mut roles = Vec::new();
        for role in user.roles.iter().flatten() {
            roles.push(auth.get_role(role).await.map_err(fail)?);
        }
        let mut out = String::new();
        push_user_with_roles(&mut out, &user.user, &roles);
        out.push('\n');
        Ok(json_response(StatusCode::OK, out))
    };
    r.await.unwrap_or_else(|e| e)
}

/// PUT `/v2/auth/users/<name>`: a create (password, maybe roles), a password change, or a
/// grant and revoke of roles. 201 only when a PUT without roles created the user.
async fn put_user(auth: &AuthStore, body: Body, name: &str, cluster: &str) -> Response {
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Ok(user) = User::from_request(&body) else {
        return invalid_json();
    };
    if user.user != name {
        return http_error(
            StatusCode::BAD_REQUEST,
            "User JSON name does not match the name in the URL",
        );
    }
    let has_roles = user.roles.as_ref().is_some_and(|r| !r.is_empty());
    let result = if user.grant.is_empty() && user.revoke.is_empty() {
        if has_roles {
            auth.create_user(user).await.map(|u| (u, false))
        } else {
            auth.create_or_update_user(user).await
        }
    } else if has_roles {
        return http_error(
            StatusCode::BAD_REQUEST,
            "User JSON contains both roles and grant/revoke",
        );
    } else {
        auth.update_user(user).await.map(|u| (u, false))
    };
    match result {
        Ok((mut out, created)) => {
            out.password.clear();
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            json_response(status, format!("{}\n", out.to_json()))
        }
        Err(e) => auth_error(&e, cluster),
    }
}
