//! The auth tables in the backend, in etcd's layout (buckets `auth`, `authUsers`,
//! `authRoles`; values encoded `authpb.User` / `authpb.Role`; the revision a big-endian
//! u64), so that etcd's data and chorus's agree record for record.

use chorus_api::authpb::{Role, User};
use chorus_storage::backend::{AUTH, AUTH_ROLES, AUTH_USERS};
use prost::Message as _;
use redb::{ReadableTable, Table, WriteTransaction};

use crate::error::AuthError;

pub const ENABLED_KEY: &[u8] = b"authEnabled";
pub const REVISION_KEY: &[u8] = b"authRevision";

type Result<T> = std::result::Result<T, AuthError>;

/// The `auth` table's two values.
pub fn read_meta(table: &impl ReadableTable<&'static [u8], &'static [u8]>) -> Result<(bool, u64)> {
    let enabled = table.get(ENABLED_KEY)?.is_some_and(|v| v.value() == [1]);
    let revision = match table.get(REVISION_KEY)? {
        None => 0,
        Some(v) => {
            let bytes: [u8; 8] = v.value().try_into().map_err(|_| corrupt("authRevision"))?;
            u64::from_be_bytes(bytes)
        }
    };
    Ok((enabled, revision))
}

pub fn put_enabled(tx: &WriteTransaction, enabled: bool) -> Result<()> {
    let mut t = tx.open_table(AUTH)?;
    t.insert(ENABLED_KEY, [u8::from(enabled)].as_slice())?;
    Ok(())
}

pub fn put_revision(tx: &WriteTransaction, revision: u64) -> Result<()> {
    let mut t = tx.open_table(AUTH)?;
    t.insert(REVISION_KEY, revision.to_be_bytes().as_slice())?;
    Ok(())
}

pub fn get_user(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    name: &str,
) -> Result<Option<User>> {
    match table.get(name.as_bytes())? {
        None => Ok(None),
        Some(v) => User::decode(v.value())
            .map(Some)
            .map_err(|_| corrupt("authpb.User")),
    }
}

pub fn get_role(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    name: &str,
) -> Result<Option<Role>> {
    match table.get(name.as_bytes())? {
        None => Ok(None),
        Some(v) => Role::decode(v.value())
            .map(Some)
            .map_err(|_| corrupt("authpb.Role")),
    }
}

/// Every user, in key (name) order.
pub fn all_users(table: &impl ReadableTable<&'static [u8], &'static [u8]>) -> Result<Vec<User>> {
    let mut out = Vec::new();
    for item in table.iter()? {
        let (_, v) = item?;
        out.push(User::decode(v.value()).map_err(|_| corrupt("authpb.User"))?);
    }
    Ok(out)
}

/// Every role, in key (name) order.
pub fn all_roles(table: &impl ReadableTable<&'static [u8], &'static [u8]>) -> Result<Vec<Role>> {
    let mut out = Vec::new();
    for item in table.iter()? {
        let (_, v) = item?;
        out.push(Role::decode(v.value()).map_err(|_| corrupt("authpb.Role"))?);
    }
    Ok(out)
}

pub fn put_user(table: &mut Table<'_, &'static [u8], &'static [u8]>, user: &User) -> Result<()> {
    table.insert(user.name.as_slice(), user.encode_to_vec().as_slice())?;
    Ok(())
}

pub fn put_role(table: &mut Table<'_, &'static [u8], &'static [u8]>, role: &Role) -> Result<()> {
    table.insert(role.name.as_slice(), role.encode_to_vec().as_slice())?;
    Ok(())
}

pub fn users(tx: &WriteTransaction) -> Result<Table<'_, &'static [u8], &'static [u8]>> {
    Ok(tx.open_table(AUTH_USERS)?)
}

pub fn roles(tx: &WriteTransaction) -> Result<Table<'_, &'static [u8], &'static [u8]>> {
    Ok(tx.open_table(AUTH_ROLES)?)
}

fn corrupt(what: &str) -> AuthError {
    AuthError::Backend(format!("corrupt {what} record"))
}
