//! The OAuth edge's shared pieces: client authentication (RFC 6749 §2.3.1), written once for
//! every request oauth-pkce builds itself (the token endpoint's quirky bodies, RFC 7009
//! revocation). The oauth2 crate does the same for the requests it builds (`AuthType`).

use base64::Engine as _;
use secrecy::{ExposeSecret as _, SecretString};

use crate::provider::ClientAuth;
use crate::token::ClientCredentials;

/// Where the client's credentials go in one form request.
pub(crate) struct ClientAuthentication {
    /// `Authorization: Basic …`, for `client_secret_basic` with a secret.
    pub(crate) header: Option<SecretString>,
    /// Form fields: `client_id`, and `client_secret` for `client_secret_post`.
    pub(crate) form: Vec<(&'static str, SecretString)>,
}

/// How `auth` sends `credentials`. A public client (`none`), or a secret-less one, sends only
/// its `client_id` in the body; `client_secret_basic` form-urlencodes each part, then base64.
pub(crate) fn client_authentication(
    auth: ClientAuth,
    credentials: &ClientCredentials,
) -> ClientAuthentication {
    let id = || {
        (
            "client_id",
            SecretString::from(credentials.client_id.clone()),
        )
    };
    match (auth, &credentials.client_secret) {
        (ClientAuth::ClientSecretBasic, Some(secret)) => {
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!(
                "{}:{}",
                enc(&credentials.client_id),
                enc(secret.expose_secret())
            );
            ClientAuthentication {
                header: Some(SecretString::from(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ))),
                form: Vec::new(),
            }
        }
        (ClientAuth::ClientSecretPost, Some(secret)) => ClientAuthentication {
            header: None,
            form: vec![id(), ("client_secret", secret.clone())],
        },
        _ => ClientAuthentication {
            header: None,
            form: vec![id()],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(secret: Option<&str>) -> ClientCredentials {
        ClientCredentials {
            client_id: "id:1".into(),
            client_secret: secret.map(SecretString::from),
        }
    }

    fn names(a: &ClientAuthentication) -> Vec<&str> {
        a.form.iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn basic_encodes_each_part_then_base64_and_sends_nothing_in_the_body() {
        let a = client_authentication(ClientAuth::ClientSecretBasic, &credentials(Some("s&t")));
        // base64("id%3A1:s%26t")
        let expected = base64::engine::general_purpose::STANDARD.encode("id%3A1:s%26t");
        assert_eq!(
            a.header.as_ref().map(|h| h.expose_secret().to_string()),
            Some(format!("Basic {expected}"))
        );
        assert!(a.form.is_empty());
    }

    #[test]
    fn post_sends_both_in_the_body_and_public_clients_only_their_id() {
        let post = client_authentication(ClientAuth::ClientSecretPost, &credentials(Some("s")));
        assert!(post.header.is_none());
        assert_eq!(names(&post), ["client_id", "client_secret"]);
        for auth in [ClientAuth::None, ClientAuth::ClientSecretBasic] {
            let a = client_authentication(auth, &credentials(None));
            assert!(a.header.is_none());
            assert_eq!(names(&a), ["client_id"]);
        }
        // A secret stored for a public client is never sent.
        let none = client_authentication(ClientAuth::None, &credentials(Some("s")));
        assert_eq!(names(&none), ["client_id"]);
    }
}
