//! `Debug` for the messages that carry a password, a password hash or a token: the
//! secret shows as `<redacted>` (or whether it is set), never its value, so that no log
//! line or panic message can leak it.

use std::fmt;

use crate::etcdserverpb::{
    AuthUserAddRequest, AuthUserChangePasswordRequest, AuthenticateRequest, AuthenticateResponse,
};
use crate::internalpb::InternalAuthenticateRequest;

fn secret(s: &str) -> &'static str {
    if s.is_empty() {
        ""
    } else {
        "<redacted>"
    }
}

impl fmt::Debug for AuthenticateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticateRequest")
            .field("name", &self.name)
            .field("password", &secret(&self.password))
            .finish()
    }
}

impl fmt::Debug for AuthenticateResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticateResponse")
            .field("header", &self.header)
            .field("token", &secret(&self.token))
            .finish()
    }
}

impl fmt::Debug for AuthUserAddRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthUserAddRequest")
            .field("name", &self.name)
            .field("password", &secret(&self.password))
            .field("options", &self.options)
            .field("hashed_password", &secret(&self.hashed_password))
            .finish()
    }
}

impl fmt::Debug for AuthUserChangePasswordRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthUserChangePasswordRequest")
            .field("name", &self.name)
            .field("password", &secret(&self.password))
            .field("hashed_password", &secret(&self.hashed_password))
            .finish()
    }
}

impl fmt::Debug for InternalAuthenticateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InternalAuthenticateRequest")
            .field("name", &self.name)
            .field("simple_token", &secret(&self.simple_token))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_show_in_debug() {
        let r = AuthUserAddRequest {
            name: "alice".into(),
            password: "hunter2".into(),
            hashed_password: "$2a$10$abcdef".into(),
            options: None,
        };
        let text = format!("{r:?}");
        assert!(text.contains("alice") && !text.contains("hunter2") && !text.contains("abcdef"));
        let t = AuthenticateResponse {
            header: None,
            token: "tok.123".into(),
        };
        assert!(!format!("{t:?}").contains("tok.123"));
    }
}
