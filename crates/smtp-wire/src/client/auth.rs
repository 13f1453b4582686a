//! Client SMTP AUTH (RFC 4954) for smarthosts: PLAIN when offered, else LOGIN. Credentials
//! go out only base64-encoded command lines; the driver decides whether TLS is required
//! first (tsubame's delivery always requires it).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::client::session::{Awaiting, ClientEvent, ClientFailure, ClientSession};
use crate::reply::Reply;

/// Which mechanism a server's EHLO allows us to use.
pub fn choose(offered: &[String]) -> Option<&'static str> {
    if offered.iter().any(|m| m == "PLAIN") {
        Some("PLAIN")
    } else if offered.iter().any(|m| m == "LOGIN") {
        Some("LOGIN")
    } else {
        None
    }
}

impl ClientSession {
    /// Authenticates after [`ClientEvent::Ready`]. The next event is `Ready` again on 235,
    /// or `Failed(ClientFailure::Auth(reply))`. Returns false when the server offers neither
    /// PLAIN nor LOGIN (nothing is sent).
    pub fn authenticate(&mut self, user: &str, password: &str) -> bool {
        match choose(&self.capabilities().auth) {
            Some("PLAIN") => {
                let token = STANDARD.encode(format!("\0{user}\0{password}"));
                self.command(Awaiting::AuthDone, &format!("AUTH PLAIN {token}"));
                true
            }
            Some(_) => {
                self.auth_login = Some((STANDARD.encode(user), STANDARD.encode(password)));
                self.command(Awaiting::AuthLoginUser, "AUTH LOGIN");
                true
            }
            None => false,
        }
    }

    pub(crate) fn on_auth_reply(&mut self, awaiting: Awaiting, reply: Reply) {
        match awaiting {
            Awaiting::AuthLoginUser if reply.code == 334 => {
                let user = self.auth_login.as_ref().map(|(u, _)| u.clone());
                self.command(Awaiting::AuthLoginPassword, &user.unwrap_or_default());
            }
            Awaiting::AuthLoginPassword if reply.code == 334 => {
                let password = self.auth_login.take().map(|(_, p)| p);
                self.command(Awaiting::AuthDone, &password.unwrap_or_default());
            }
            Awaiting::AuthDone if reply.code == 235 => {
                self.auth_login = None;
                self.ready.push_back(ClientEvent::Ready);
            }
            _ => {
                self.auth_login = None;
                self.fail_with(ClientFailure::Auth(reply));
            }
        }
    }
}
