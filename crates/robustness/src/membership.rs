//! Membership changes under faults: a member is replaced the way etcd's runbook replaces
//! one (remove it, wipe its data, add it back as a learner, start it with
//! `--initial-cluster-state=existing`, promote it once it has caught up) while another
//! fault strikes: another member killed and restarted, or the new learner cut off from
//! its peers while it catches up.
//!
//! Every membership call is retried until a deadline, as an operator would: a call whose
//! answer was lost may have been applied, so a retry that finds the change already made
//! (the member gone, the URL already added, the learner already promoted) counts as done.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chorus_client::pb::{MemberAddRequest, MemberPromoteRequest, MemberRemoveRequest};
use chorus_client::{Client, ConnectOptions};
use rand::rngs::StdRng;
use rand::Rng;

use crate::cluster::Cluster;
use crate::proxy::LinkFault;

/// The fault that strikes while a member is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stress {
    /// Another member is killed after the removal and restarted (with two members left,
    /// the cluster has no quorum until it is back).
    Kill,
    /// The new learner's peer links are blackholed for a while as it catches up.
    Partition,
}

impl Stress {
    pub fn name(self) -> &'static str {
        match self {
            Stress::Kill => "kill",
            Stress::Partition => "partition",
        }
    }
}

/// How long one membership step may take, retries included.
const STEP: Duration = Duration::from_secs(30);
/// Between retries of a membership call that the cluster refused for now.
const RETRY: Duration = Duration::from_millis(200);
/// One membership call's limit, as etcdctl's `--command-timeout`: etcd waits for a
/// configuration change without a deadline of its own, and raft may have dropped it
/// (another change pending, a leader stepping down).
const CALL: Duration = Duration::from_secs(5);

/// Replaces member `m` under `stress`; returns what happened, for the report.
pub async fn replace(
    cluster: &mut Cluster,
    m: usize,
    stress: Stress,
    rng: &mut StdRng,
) -> Result<String> {
    let others: Vec<usize> = (0..cluster.len()).filter(|&i| i != m).collect();
    let client = connect(cluster, &others).await?;
    let name = cluster.members[m].name.clone();
    let old_id = member_id(&client, &name).await?;
    remove(&client, old_id).await?;
    if cluster
        .wait_exit(m, Duration::from_secs(10))
        .await
        .is_none()
    {
        // Not told in time (its peers cut it off first): it would stop by itself.
        cluster.kill(m).await;
    }
    cluster.wipe_for_rejoin(m)?;
    let mut detail = format!("removed {name} ({old_id:x})");
    let victim = others[rng.gen_range(0..others.len())];
    if stress == Stress::Kill {
        cluster.kill(victim).await;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..800))).await;
        cluster.spawn(victim, None)?;
        detail.push_str(&format!("; killed m{victim}"));
    }
    let peer_url = format!("http://127.0.0.1:{}", cluster.members[m].proxy_port);
    let new_id = add_learner(&client, &peer_url).await?;
    detail.push_str(&format!("; added learner {new_id:x}"));
    cluster.spawn(m, None)?;
    if stress == Stress::Partition {
        cluster.proxy.isolate(
            m,
            LinkFault {
                blackhole: true,
                ..Default::default()
            },
        );
        let hold = Duration::from_millis(rng.gen_range(1500..3000));
        tokio::time::sleep(hold).await;
        cluster.proxy.heal();
        detail.push_str(&format!("; learner cut off {hold:?}"));
    }
    if stress == Stress::Kill {
        cluster.wait_ready(victim).await?;
    }
    cluster.wait_ready(m).await?;
    let tries = promote(&client, new_id).await?;
    detail.push_str(&format!("; promoted after {tries} tries"));
    Ok(detail)
}

pub(crate) async fn connect(cluster: &Cluster, members: &[usize]) -> Result<Client> {
    let endpoints: Vec<String> = members
        .iter()
        .map(|&i| cluster.members[i].client_url())
        .collect();
    let options = ConnectOptions {
        request_timeout: Some(Duration::from_secs(2)),
        ..Default::default()
    };
    Ok(Client::connect(&endpoints, options).await?)
}

async fn member_id(client: &Client, name: &str) -> Result<u64> {
    let list = retry("member list", || async { Ok(client.member_list().await?) }).await?;
    list.members
        .iter()
        .find(|m| m.name == name)
        .map(|m| m.id)
        .with_context(|| format!("{name} is not in the member list"))
}

async fn remove(client: &Client, id: u64) -> Result<()> {
    retry("member remove", || async {
        let mut c = client.cluster_client();
        match within(c.member_remove(MemberRemoveRequest { id })).await? {
            Ok(_) => Ok(()),
            // An earlier try was applied after all.
            Err(s) if s.message() == "etcdserver: member not found" => Ok(()),
            Err(s) => Err(s.into()),
        }
    })
    .await
}

/// Adds `peer_url` as a learner; its member ID.
async fn add_learner(client: &Client, peer_url: &str) -> Result<u64> {
    retry("member add --learner", || async {
        let mut c = client.cluster_client();
        let req = MemberAddRequest {
            peer_ur_ls: vec![peer_url.to_owned()],
            is_learner: true,
        };
        match within(c.member_add(req)).await? {
            Ok(r) => Ok(r.into_inner().member.context("no member in the answer")?.id),
            Err(s) if s.message() == "etcdserver: Peer URLs already exists" => {
                let list = client.member_list().await?;
                let added = list.members.iter().find(|m| m.peer_ur_ls == [peer_url]);
                Ok(added.context("the URL exists but no member has it")?.id)
            }
            Err(s) => Err(s.into()),
        }
    })
    .await
}

/// Promotes learner `id` once it has caught up (the leader refuses before); how many
/// tries it took.
async fn promote(client: &Client, id: u64) -> Result<u32> {
    let mut tries = 0;
    retry("member promote", || {
        tries += 1;
        async move {
            let mut c = client.cluster_client();
            match within(c.member_promote(MemberPromoteRequest { id })).await? {
                Ok(_) => Ok(()),
                Err(s) if s.message() == "etcdserver: can only promote a learner member" => Ok(()),
                Err(s) => Err(s.into()),
            }
        }
    })
    .await?;
    Ok(tries)
}

/// `call`'s answer, or an error once [`CALL`] has passed.
pub(crate) async fn within<T>(call: impl std::future::Future<Output = T>) -> Result<T> {
    tokio::time::timeout(CALL, call)
        .await
        .with_context(|| format!("no answer within {CALL:?}"))
}

/// Calls `f` until it succeeds or [`STEP`] has passed.
pub(crate) async fn retry<T, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let deadline = Instant::now() + STEP;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => {
                bail!("{what} did not succeed within {STEP:?}: {e:#}")
            }
            Err(_) => tokio::time::sleep(RETRY).await,
        }
    }
}
