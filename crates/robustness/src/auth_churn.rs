//! Auth changes under faults: a user and a role are created, given permissions, one of
//! them revoked, while a member (the leader half of the time) is killed with SIGKILL and
//! restarted between two changes. Then every member, asked on its own, must hold exactly
//! the acknowledged changes (user, its role, the role's permissions) and the same auth
//! revision: no acknowledged change lost by a member's WAL replay or snapshot, and no
//! member that applied an entry the others did not.
//!
//! Auth stays disabled (the traffic is not authenticated); enabling it is covered by the
//! end-to-end tests (`tests/auth.rs`). Every call is retried as an operator would, and a
//! retry that finds the change already made counts as done.

use std::time::Duration;

use anyhow::{bail, Result};
use chorus_api::authpb::Permission;
use chorus_client::pb::{
    AuthRoleAddRequest, AuthRoleGetRequest, AuthRoleGrantPermissionRequest,
    AuthRoleRevokePermissionRequest, AuthStatusRequest, AuthUserAddRequest, AuthUserGetRequest,
    AuthUserGrantRoleRequest,
};
use chorus_client::{prefix_range_end, Client};
use rand::rngs::StdRng;
use rand::Rng;

use crate::cluster::Cluster;
use crate::membership::{connect, retry, within};

/// A permission as the check compares them: (type, key, range end).
type Perm = (i32, Vec<u8>, Vec<u8>);

const READ: i32 = 0;
const READWRITE: i32 = 2;

/// One auth change of a round, on the round's user and role (both named `name`).
#[derive(Debug, Clone)]
enum Change {
    UserAdd,
    RoleAdd,
    Grant(Perm),
    GrantRole,
    Revoke { key: Vec<u8>, range_end: Vec<u8> },
}

impl Change {
    /// The refusal a retry gets when an earlier try of the same change was applied
    /// (granting a permission or a role twice is no error in etcd).
    fn already_done(&self) -> Option<&'static str> {
        match self {
            Change::UserAdd => Some("etcdserver: user name already exists"),
            Change::RoleAdd => Some("etcdserver: role name already exists"),
            Change::Revoke { .. } => Some("etcdserver: permission is not granted to the role"),
            Change::Grant(_) | Change::GrantRole => None,
        }
    }

    async fn send(&self, client: &Client, name: &str) -> Result<(), tonic::Status> {
        let mut auth = client.auth_client();
        let name = name.to_owned();
        match self.clone() {
            Change::UserAdd => {
                let password = "churn".into();
                let req = AuthUserAddRequest {
                    name,
                    password,
                    ..Default::default()
                };
                auth.user_add(req).await.map(drop)
            }
            Change::RoleAdd => auth.role_add(AuthRoleAddRequest { name }).await.map(drop),
            Change::Grant((perm_type, key, range_end)) => {
                let perm = Some(Permission {
                    perm_type,
                    key,
                    range_end,
                });
                let req = AuthRoleGrantPermissionRequest { name, perm };
                auth.role_grant_permission(req).await.map(drop)
            }
            Change::GrantRole => {
                let req = AuthUserGrantRoleRequest {
                    user: name.clone(),
                    role: name,
                };
                auth.user_grant_role(req).await.map(drop)
            }
            Change::Revoke { key, range_end } => {
                let req = AuthRoleRevokePermissionRequest {
                    role: name,
                    key,
                    range_end,
                };
                auth.role_revoke_permission(req).await.map(drop)
            }
        }
    }
}

/// One round: six changes with a member killed and restarted among them, then the check.
pub async fn churn(cluster: &mut Cluster, rng: &mut StdRng) -> Result<String> {
    let tag: u32 = rng.gen();
    let name = format!("churn-{tag:08x}");
    let prefix = format!("/churn/{tag:08x}/a/").into_bytes();
    let single = format!("/churn/{tag:08x}/b").into_bytes();
    let changes = [
        Change::UserAdd,
        Change::RoleAdd,
        Change::Grant((READWRITE, prefix.clone(), prefix_range_end(&prefix))),
        Change::Grant((READ, single.clone(), Vec::new())),
        Change::GrantRole,
        Change::Revoke {
            range_end: prefix_range_end(&prefix),
            key: prefix,
        },
    ];
    let everyone: Vec<usize> = (0..cluster.len()).collect();
    let client = connect(cluster, &everyone).await?;
    let kill_before = rng.gen_range(0..changes.len());
    let victim = match rng.gen_bool(0.5) {
        true => cluster.leader(Duration::from_secs(5)).await.unwrap_or(0),
        false => rng.gen_range(0..cluster.len()),
    };
    for (i, change) in changes.iter().enumerate() {
        if i == kill_before {
            cluster.kill(victim).await;
            tokio::time::sleep(Duration::from_millis(rng.gen_range(0..800))).await;
            cluster.spawn(victim, None)?;
        }
        retry(&format!("{change:?}"), || async {
            match within(change.send(&client, &name)).await? {
                Err(s) if Some(s.message()) != change.already_done() => Err(s.into()),
                _ => Ok(()),
            }
        })
        .await?;
    }
    cluster.wait_ready(victim).await?;
    check_members(cluster, &name, &[(READ, single, Vec::new())]).await?;
    Ok(format!(
        "{name}: {} changes, m{victim} killed before change {kill_before}; every member holds them",
        changes.len()
    ))
}

/// Every member, asked alone, holds the user with the role, the role with exactly
/// `expected`, and the same auth revision as the others. A member still catching up is
/// asked again until the step's deadline.
async fn check_members(cluster: &Cluster, name: &str, expected: &[Perm]) -> Result<()> {
    let mut revisions = Vec::new();
    for i in 0..cluster.len() {
        let client = connect(cluster, &[i]).await?;
        let revision = retry(&format!("member {i} holding the changes"), || async {
            let (roles, perms, revision) = read_auth(&client, name).await?;
            if roles != [name] || perms != expected {
                bail!("user {name} has roles {roles:?}, role {name} has {perms:?}; acknowledged: role {name}, {expected:?}");
            }
            Ok(revision)
        })
        .await?;
        revisions.push(revision);
    }
    if revisions.iter().any(|r| *r != revisions[0]) {
        bail!("the members' auth revisions differ: {revisions:?}");
    }
    Ok(())
}

/// The user's roles, the role's permissions and the auth revision (`None` from etcd 3.4),
/// as one member has them.
async fn read_auth(client: &Client, name: &str) -> Result<(Vec<String>, Vec<Perm>, Option<u64>)> {
    let mut auth = client.auth_client();
    let user = within(auth.user_get(AuthUserGetRequest { name: name.into() })).await??;
    let role = within(auth.role_get(AuthRoleGetRequest { role: name.into() })).await??;
    // etcd 3.4 has no AuthStatus (3.5 added it): no revision to compare there.
    let revision = match within(auth.auth_status(AuthStatusRequest {})).await? {
        Ok(status) => Some(status.into_inner().auth_revision),
        Err(s) if s.code() == tonic::Code::Unimplemented => None,
        Err(s) => return Err(s.into()),
    };
    let perms = role.into_inner().perm.into_iter();
    Ok((
        user.into_inner().roles,
        perms.map(|p| (p.perm_type, p.key, p.range_end)).collect(),
        revision,
    ))
}
