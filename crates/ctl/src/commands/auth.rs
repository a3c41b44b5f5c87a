//! `auth enable|disable`, `user ...`, `role ...`: the Auth service's calls.

use chorus_api::authpb::{permission::Type as PermType, Permission, UserAddOptions};
use chorus_api::etcdserverpb::*;
use chorus_client::{prefix_range_end, Client};
use prost::Message;

use crate::ctl::Ctl;
use crate::exit::{self, ExitCode};

fn bad(msg: &str) -> ! {
    exit::fail(ExitCode::BadArgs, msg)
}

fn forever() -> std::time::Instant {
    std::time::Instant::now() + std::time::Duration::from_secs(365 * 24 * 3600)
}

/// One Auth call through the client's current endpoint; a failure ends the command.
macro_rules! call {
    ($client:expr, $deadline:expr, $method:ident, $req:expr) => {{
        let req = $req;
        crate::ctl::unary_until(&$client, $deadline, || {
            let mut a = $client.auth_client();
            let req = req.clone();
            async move { Ok(a.$method(req).await?.into_inner()) }
        })
        .await
        .unwrap_or_else(|e| exit::fail(ExitCode::Error, &e))
    }};
}

pub async fn run(ctl: &mut Ctl, path: &str) {
    match path {
        "auth enable" => auth_enable(ctl).await,
        "auth disable" => auth_disable(ctl).await,
        "user add" => user_add(ctl).await,
        "user delete" => user_delete(ctl).await,
        "user get" => user_get(ctl).await,
        "user list" => user_list(ctl).await,
        "user passwd" => user_passwd(ctl).await,
        "user grant-role" => user_grant_role(ctl).await,
        "user revoke-role" => user_revoke_role(ctl).await,
        "role add" => role_add(ctl).await,
        "role delete" => role_delete(ctl).await,
        "role get" => role_get(ctl).await,
        "role list" => role_list(ctl).await,
        "role grant-permission" => role_grant_permission(ctl).await,
        "role revoke-permission" => role_revoke_permission(ctl).await,
        other => exit::fail(ExitCode::Error, &format!("unknown command {other:?}")),
    }
}

async fn auth_enable(ctl: &mut Ctl) {
    let args = ctl.args.clone();
    if !args.is_empty() {
        bad("auth enable command does not accept any arguments");
    }
    let client = ctl.client().await;
    let deadline = ctl.deadline();
    // Creates the root role first when the server asks for it, as etcdctl does.
    let mut rounds = 0;
    loop {
        rounds += 1;
        let r = crate::ctl::unary_until(&client, deadline, || {
            let mut a = client.auth_client();
            async move { Ok(a.auth_enable(AuthEnableRequest {}).await?.into_inner()) }
        })
        .await;
        match r {
            Ok(_) => break,
            Err(e) if e == "etcdserver: root user does not have root role" && rounds < 3 => {
                call!(
                    client,
                    deadline,
                    role_add,
                    AuthRoleAddRequest {
                        name: "root".into()
                    }
                );
                call!(
                    client,
                    deadline,
                    user_grant_role,
                    AuthUserGrantRoleRequest {
                        user: "root".into(),
                        role: "root".into()
                    }
                );
            }
            Err(e) => exit::fail(ExitCode::Error, &e),
        }
    }
    println!("Authentication Enabled");
}

async fn auth_disable(ctl: &mut Ctl) {
    let args = ctl.args.clone();
    if !args.is_empty() {
        bad("auth disable command does not accept any arguments");
    }
    let client = ctl.client().await;
    call!(client, ctl.deadline(), auth_disable, AuthDisableRequest {});
    println!("Authentication Disabled");
}

async fn user_add(ctl: &mut Ctl) {
    let args = ctl.args.clone();
    let p = ctl.printer;
    if args.len() != 1 {
        bad("user add command requires user name as its argument");
    }
    let (user, password, no_password) = if ctl.flags.bool("no-password") {
        (args[0].clone(), String::new(), true)
    } else if !ctl.flags.str("new-user-password").is_empty() {
        (args[0].clone(), ctl.flags.str("new-user-password"), false)
    } else if let Some((u, pw)) = args[0].split_once(':') {
        if u.is_empty() {
            bad("empty user name is not allowed");
        }
        (u.to_owned(), pw.to_owned(), false)
    } else {
        (args[0].clone(), read_password(ctl, &args[0]), false)
    };
    let client = ctl.client().await;
    let r = call!(
        client,
        forever(),
        user_add,
        AuthUserAddRequest {
            name: user.clone(),
            password,
            options: Some(UserAddOptions { no_password }),
            ..Default::default()
        }
    );
    p.header_only(
        &format!("User {user} created\n"),
        r.header.as_ref(),
        r.encode_to_vec(),
        true,
    );
}

async fn user_delete(ctl: &mut Ctl) {
    let args = ctl.args.clone();
    let p = ctl.printer;
    one(
        &args,
        "user delete command requires user name as its argument",
    );
    let client = ctl.client().await;
    let r = call!(
        client,
        forever(),
        user_delete,
        AuthUserDeleteRequest {
            name: args[0].clone()
        }
    );
    p.header_only(
        &format!("User {} deleted\n", args[0]),
        r.header.as_ref(),
        r.encode_to_vec(),
        true,
    );
}

async fn user_get(ctl: &mut Ctl) {
    let args = ctl.args.clone();
    let p = ctl.printer;
    one(&args, "user get command requires user name as its argument");
    let client = ctl.client().await;
    let r = call!(
        client,
        forever(),
        user_get,
        AuthUserGetRequest {
            name: args[0].clone()
        }
    );
    if ctl.flags.bool("detail") {
        println!("User: {}", args[0]);
        for role in &r.roles {
            println!();
            let rr = fetch_role(&client, role).await;
            p.role_get(role, &rr);
        }
    } else {
        p.user_get(&args[0], &r);
    }
}

async fn user_list(ctl: &mut Ctl) {
    let args = ctl.args.clone();
    let p = ctl.printer;
    if !args.is_empty() {
        bad("user list command requires no arguments");
    }
    let client = ctl.client().await;
    let r = call!(client, forever(), user_list, AuthUserListRequest {});
    p.user_list(&r);
}

async fn user_passwd(ctl: &mut Ctl) {
    let args = ctl.args.clone();
    let p = ctl.printer;
    one(
        &args,
        "user passwd command requires user name as its argument",
    );
    let password = read_password(ctl, &args[0]);
    let client = ctl.client().await;
    let r = call!(
        client,
        forever(),
        user_change_password,
        AuthUserChangePasswordRequest {
            name: args[0].clone(),
            password,
            ..Default::default()
        }
    );
    p.header_only(
        "Password updated\n",
        r.header.as_ref(),
        r.encode_to_vec(),
        true,
    );
}

async fn user_grant_role(ctl: &mut Ctl) {
    let args = ctl.args.clone();
    let p = ctl.printer;
    if args.len() != 2 {
        bad("user grant command requires user name and role name as its argument");
    }
    let client = ctl.client().await;
    let r = call!(
        client,
        forever(),
        user_grant_role,
        AuthUserGrantRoleRequest {
            user: args[0].clone(),
            role: args[1].clone(),
        }
    );
    p.header_only(
        &format!("Role {} is granted to user {}\n", args[1], args[0]),
        r.header.as_ref(),
        r.encode_to_vec(),
        true,
    );
}

async fn user_revoke_role(ctl: &mut Ctl) {
    let args = ctl.args.clone();
    let p = ctl.printer;
    if args.len() != 2 {
        bad("user revoke-role requires user name and role name as its argument");
    }
    let client = ctl.client().await;
    let r = call!(
        client,
        forever(),
        user_revoke_role,
        AuthUserRevokeRoleRequest {
            name: args[0].clone(),
            role: args[1].clone(),
        }
    );
    p.header_only(
        &format!("Role {} is revoked from user {}\n", args[1], args[0]),
        r.header.as_ref(),
        r.encode_to_vec(),
        true,
    );
}

async fn role_add(ctl: &mut Ctl) {
    let args = ctl.args.clone();
    let p = ctl.printer;
    one(&args, "role add command requires role name as its argument");
    let client = ctl.client().await;
    let r = call!(
        client,
        forever(),
        role_add,
        AuthRoleAddRequest {
            name: args[0].clone()
        }
    );
    p.header_only(
        &format!("Role {} created\n", args[0]),
        r.header.as_ref(),
        r.encode_to_vec(),
        true,
    );
}

async fn role_delete(ctl: &mut Ctl) {
    let args = ctl.args.clone();
    let p = ctl.printer;
    one(
        &args,
        "role delete command requires role name as its argument",
    );
    let client = ctl.client().await;
    let r = call!(
        client,
        forever(),
        role_delete,
        AuthRoleDeleteRequest {
            role: args[0].clone()
        }
    );
    p.header_only(
        &format!("Role {} deleted\n", args[0]),
        r.header.as_ref(),
        r.encode_to_vec(),
        true,
    );
}

async fn role_get(ctl: &mut Ctl) {
    let args = ctl.args.clone();
    let p = ctl.printer;
    one(&args, "role get command requires role name as its argument");
    let client = ctl.client().await;
    let r = fetch_role(&client, &args[0]).await;
    p.role_get(&args[0], &r);
}

async fn role_list(ctl: &mut Ctl) {
    let args = ctl.args.clone();
    let p = ctl.printer;
    if !args.is_empty() {
        bad("role list command requires no arguments");
    }
    let client = ctl.client().await;
    let r = call!(client, forever(), role_list, AuthRoleListRequest {});
    p.role_list(&r);
}

async fn role_grant_permission(ctl: &mut Ctl) {
    let args = ctl.args.clone();
    let p = ctl.printer;
    if args.len() < 3 {
        bad("role grant command requires role name, permission type, and key [endkey] as its argument");
    }
    let perm_type = match args[1].to_uppercase().as_str() {
        "READ" => PermType::Read,
        "WRITE" => PermType::Write,
        "READWRITE" => PermType::Readwrite,
        _ => bad(&format!("invalid permission type: {}", args[1])),
    };
    let (key, range_end) = perm_range(ctl, &args[2..]);
    let client = ctl.client().await;
    let r = call!(
        client,
        forever(),
        role_grant_permission,
        AuthRoleGrantPermissionRequest {
            name: args[0].clone(),
            perm: Some(Permission {
                perm_type: perm_type as i32,
                key: key.into_bytes(),
                range_end: range_end.into_bytes(),
            }),
        }
    );
    p.header_only(
        &format!("Role {} updated\n", args[0]),
        r.header.as_ref(),
        r.encode_to_vec(),
        true,
    );
}

async fn role_revoke_permission(ctl: &mut Ctl) {
    let args = ctl.args.clone();
    let p = ctl.printer;
    if args.len() < 2 {
        bad("role revoke-permission command requires role name and key [endkey] as its argument");
    }
    let (key, range_end) = perm_range(ctl, &args[1..]);
    let client = ctl.client().await;
    let r = call!(
        client,
        forever(),
        role_revoke_permission,
        AuthRoleRevokePermissionRequest {
            role: args[0].clone(),
            key: key.clone().into_bytes(),
            range_end: range_end.clone().into_bytes(),
        }
    );
    let simple = if range_end.is_empty() {
        format!(
            "Permission of key {} is revoked from role {}\n",
            args[1], args[0]
        )
    } else if range_end != "\0" {
        format!(
            "Permission of range [{}, {}) is revoked from role {}\n",
            args[1], range_end, args[0]
        )
    } else {
        format!(
            "Permission of range [{}, <open ended> is revoked from role {}\n",
            args[1], args[0]
        )
    };
    p.header_only(&simple, r.header.as_ref(), r.encode_to_vec(), true);
}

fn one(args: &[String], msg: &str) {
    if args.len() != 1 {
        bad(msg);
    }
}

async fn fetch_role(client: &Client, role: &str) -> AuthRoleGetResponse {
    call!(
        client,
        forever(),
        role_get,
        AuthRoleGetRequest {
            role: role.to_owned()
        }
    )
}

/// `--interactive=false`: the first word of standard input (`fmt.Scanf("%s")`); otherwise
/// etcdctl's `readPasswordInteractive`: asked twice on the terminal, the same both times.
fn read_password(ctl: &Ctl, name: &str) -> String {
    if !ctl.flags.bool("interactive") {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        return line.split_whitespace().next().unwrap_or("").to_owned();
    }
    let ask = |prompt: String| {
        chorus_client::prompt::ask_password(&prompt)
            .unwrap_or_else(|e| bad(&format!("failed to ask password: {e}")))
    };
    let first = ask(format!("Password of {name}: "));
    if first.is_empty() {
        bad("empty password");
    }
    let again = ask(format!("Type password of {name} again for confirmation: "));
    if first != again {
        bad("given passwords are different");
    }
    first
}

/// `permRange`: the key and range end of a permission from the arguments and flags.
fn perm_range(ctl: &Ctl, args: &[String]) -> (String, String) {
    let prefix = ctl.flags.bool("prefix");
    let from_key = ctl.flags.bool("from-key");
    let key = args[0].clone();
    if key.is_empty() {
        if prefix && from_key {
            bad("--from-key and --prefix flags are mutually exclusive");
        }
        let end = if prefix || from_key { "\0" } else { "" };
        return ("\0".to_owned(), end.to_owned());
    }
    let end = if args.len() == 1 {
        if prefix {
            if from_key {
                bad("--from-key and --prefix flags are mutually exclusive");
            }
            String::from_utf8_lossy(&prefix_range_end(key.as_bytes())).into_owned()
        } else if from_key {
            "\0".to_owned()
        } else {
            String::new()
        }
    } else {
        if prefix {
            bad("unexpected endkey argument with --prefix flag");
        }
        if from_key {
            bad("unexpected endkey argument with --from-key flag");
        }
        args[1].clone()
    };
    (key, end)
}
