//! Which peers a TLS handshake accepts, by SPIFFE ID, as `spiffe-rustls` authorizers
//! (go-spiffe's AuthorizeID / AuthorizeOneOf / AuthorizeMemberOf / AuthorizeAny). A
//! refusal is recorded with the peer's ID and the rule it broke, for the error message.

use std::sync::{Arc, Mutex};

use ephemos_config::model::ServerAuthorization;

/// The reason of the last refusal, shared with whoever reports the failed handshake.
pub(crate) type Refusal = Arc<Mutex<Option<String>>>;

/// Accepts peers by a rule and records why it refused one.
pub(crate) struct PeerAuthorizer {
    rule: ServerAuthorization,
    /// "server" or "client": who is being authorized, for messages.
    peer: &'static str,
    refusal: Refusal,
}

impl PeerAuthorizer {
    pub(crate) fn new(rule: ServerAuthorization, peer: &'static str, refusal: Refusal) -> Self {
        Self {
            rule,
            peer,
            refusal,
        }
    }
}

/// Whether `id` is allowed by `rule`, and if not, why.
pub(crate) fn check(rule: &ServerAuthorization, id: &str) -> Result<(), String> {
    let trust_domain = id
        .strip_prefix("spiffe://")
        .map(|rest| rest.split('/').next().unwrap_or(rest))
        .unwrap_or_default();
    match rule {
        ServerAuthorization::Any => Ok(()),
        ServerAuthorization::Ids(ids) if ids.iter().any(|allowed| allowed.as_str() == id) => Ok(()),
        ServerAuthorization::Ids(ids) => Err(format!(
            "`{id}` is not {}",
            ids.iter()
                .map(|i| format!("`{i}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        )),
        ServerAuthorization::TrustDomains(tds)
            if tds.iter().any(|td| td.as_str() == trust_domain) =>
        {
            Ok(())
        }
        ServerAuthorization::TrustDomains(tds) => Err(format!(
            "`{id}` is not a member of trust domain {}",
            tds.iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        )),
    }
}

impl spiffe_rustls::Authorizer for PeerAuthorizer {
    fn authorize(&self, peer: &spiffe_rustls::SpiffeId) -> bool {
        match check(&self.rule, &peer.to_string()) {
            Ok(()) => true,
            Err(reason) => {
                let message = format!(
                    "{} refused: {reason} (authorization: {})",
                    self.peer, self.rule
                );
                tracing::warn!(%message, "TLS peer refused");
                if let Ok(mut slot) = self.refusal.lock() {
                    *slot = Some(message);
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use ephemos_config::value::{SpiffeId, TrustDomain};

    use super::*;

    #[test]
    fn rules_accept_and_refuse_with_a_reason() {
        let exact = ServerAuthorization::Ids(Cow::Owned(vec![
            SpiffeId::parse("spiffe://a.org/x").unwrap(),
        ]));
        assert_eq!(check(&exact, "spiffe://a.org/x"), Ok(()));
        assert_eq!(
            check(&exact, "spiffe://a.org/y"),
            Err("`spiffe://a.org/y` is not `spiffe://a.org/x`".to_owned())
        );
        let members = ServerAuthorization::TrustDomains(Cow::Owned(vec![
            TrustDomain::parse("a.org").unwrap(),
        ]));
        assert_eq!(check(&members, "spiffe://a.org/anything"), Ok(()));
        assert!(
            check(&members, "spiffe://b.org/x")
                .unwrap_err()
                .contains("member of trust domain `a.org`")
        );
        // A trust domain that only starts like the allowed one is another trust domain.
        assert!(check(&members, "spiffe://a.org.evil/x").is_err());
        assert_eq!(check(&ServerAuthorization::Any, "spiffe://z/z"), Ok(()));
    }
}
